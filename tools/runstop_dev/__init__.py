"""Developer tooling for runstop: the local runner, DynamoDB Local, template readers.

Never shipped to Lambda. Everything here reads template.yaml, so the table, the routes and
the handlers are defined once, there.
"""
