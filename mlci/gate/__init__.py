"""mlci.gate"""
