"""A SageMaker-compatible emulator on 127.0.0.1 (see ``docs`` in server.py).

It never imports the orchestrator: anything that speaks AWS's protocol can drive it.
"""
