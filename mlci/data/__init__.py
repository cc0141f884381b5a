"""mlci.data"""
