"""mlci.schedule"""
