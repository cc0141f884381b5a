"""mlci.lint"""
