"""Requests and settings shared by the client and gateway tests."""

from router.serving.client import RetryPolicy

CODE = [{"role": "user", "content": "Write a Python function to merge sort an array"}]
HELLO = [{"role": "user", "content": "hello there my friend"}]
LONG = [{"role": "user", "content": "Write a Python function that sorts a list of integers quickly"}]
#: Retries without real waiting.
FAST = RetryPolicy(base_delay=0.01, max_delay=0.02)
