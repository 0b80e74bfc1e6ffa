"""runstop's benchmark (`make bench`): what a cancel costs, side by side with the naive design.

Not shipped and not part of the service: it drives the template's functions through the
local runner on DynamoDB Local, in one run, and writes bench/results/REPORT.md.
"""
