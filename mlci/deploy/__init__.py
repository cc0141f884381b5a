"""mlci.deploy"""
