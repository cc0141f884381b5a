"""mlci.retrain"""
