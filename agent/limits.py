# What anyone who can reach the agent's command inputs may cost it, at most.
#
# An MQTT broker without our ACL, or a serial line, lets anyone send the agent
# bytes. These bounds hold whatever arrives (docs/hardening.md says what they
# buy, as measured):
#
# - a command payload is size-checked before it is copied or kept: over
#   `MAX_COMMAND_BYTES` it is dropped at once, counted, never queued;
# - at most `COMMAND_QUEUE` received commands wait for the agent thread
#   (`COMMAND_QUEUE` x `MAX_COMMAND_BYTES` = 256 KB at worst); past that the
#   newest are dropped and counted, so the agent thread verifies at most
#   `COMMAND_QUEUE` commands a tick, whatever the rate;
# - link state and errors never share a queue with commands, so a flood can
#   never push a link event out;
# - refusals are answered at most `REFUSAL_BURST` at once and then one every
#   `REFUSAL_EVERY` seconds; the rest are counted in `status` and not
#   answered, so a flood cannot push telemetry out of the outbox; each answer
#   is cut to `MAX_ERROR_CHARS` (a sentence may quote a field of the command).

MAX_COMMAND_BYTES = 4096     # the largest command the verifier takes (agent/commands.py)
COMMAND_QUEUE = 64           # received commands waiting for the agent thread
ERROR_QUEUE = 64             # transport diagnostics waiting for the agent thread
REFUSAL_BURST = 20           # refusals answered back to back
REFUSAL_EVERY = 1.0          # seconds: then one answer per this much time
MAX_ERROR_CHARS = 300        # a refusal's sentence, cut: it may quote what was sent
