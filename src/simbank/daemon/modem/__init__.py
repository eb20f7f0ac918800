"""One modem's supervision: its session over the serial port (session), the SIM read back and
adopted (identify), what the network says (network), inbound SMS (sms_pickup), hang
detection and reboot (liveness), reconnect backoff (reconnect), and what the bank hears
from it (observer). ``ModemSupervisor`` (supervisor) adds the operations."""
