"""mlci.report"""
