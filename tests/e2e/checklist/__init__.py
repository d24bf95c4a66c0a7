"""
SPEC-CHECKLIST.md, row by row, for every RPC we advertise, against the real process.

One module per CSI service (``test_identity``, ``test_controller``, ``test_node``); each test id
(or test name) names its checklist row. The rows that end in a status code are ``Row``s in each
module's ``ERROR_ROWS``; the rows about success, idempotency and responses are its tests. The
driver process is the e2e package's one ``driver`` fixture.
"""
