"""mlci.train"""
