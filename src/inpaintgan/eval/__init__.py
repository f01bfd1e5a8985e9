"""Evaluation: mask protocols, the eval runner and its reports."""
