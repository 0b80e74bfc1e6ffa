# One cold start, run as `python -c <this file's text> ...` in the Lambda-like environment.
#
# Deliberately nothing else imported before the clock starts: whatever this script imported
# first would be free for the candidate. sys and time are built in; json is what Lambda's own
# Python runtime (awslambdaric's bootstrap) has imported before it imports the handler's
# module, so it is loaded at that point of a real cold start too. argv: mode ("floor" or
# "function"), module, handler attribute, the first event as JSON (or "" for none), the file
# to write the figures to (JSON), and for the floor the UpdateItem parameters as JSON.
import json
import sys
import time

mode, module_name, attribute, event_text, out_path, call_text = sys.argv[1:7]


# The fake context is runstop_dev.handlers.LambdaContext everywhere else; importing that here
# would put the dev tools' modules (dataclasses, uuid, the template reader) before the clock.
class Context:
    function_name = "runstop-bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:runstop-bench"
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/runstop-bench"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


event = json.loads(event_text) if event_text else None
call = json.loads(call_text) if call_text else None
status = None
t0, c0 = time.perf_counter(), time.process_time()
if mode == "floor":
    import boto3

    t1 = time.perf_counter()
    client = boto3.client("dynamodb")
    t2, c2 = time.perf_counter(), time.process_time()
    if call is not None:
        status = client.update_item(**call)["ResponseMetadata"]["HTTPStatusCode"]
else:
    module = __import__(module_name)
    t1 = time.perf_counter()
    store = sys.modules.get("runstop.store")
    if store is not None:  # the client the function would make on its first request
        store.run_store()
    t2, c2 = time.perf_counter(), time.process_time()
    if event is not None:
        status = getattr(module, attribute)(event, Context()).get("statusCode")
t3, c3 = time.perf_counter(), time.process_time()
with open(out_path, "w") as out:
    json.dump(
        {
            "import_s": t1 - t0,
            "client_s": t2 - t1,
            "first_s": (t3 - t2) if (event is not None or call is not None) else None,
            "total_s": t3 - t0,
            "init_s": t2 - t0,
            "init_cpu_s": c2 - c0,
            "cpu_s": c3 - c0,
            "status": status,
            "modules": len(sys.modules),
        },
        out,
    )
