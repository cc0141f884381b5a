"""mlci.generate"""
