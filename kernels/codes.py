"""Integer codes of the SPEC's enums, shared by the kernels and the Arrow adaptor.

Each tuple lists the SPEC values in code order: the code of a value is its index.
"""

METRICS = ("device", "user", "core")
DEVICE, USER, CORE = 0, 1, 2

ALLOCATION_TYPES = ("allocated", "permanent", "awaiting_inventory", "unallocated")
ALLOCATED, PERMANENT, AWAITING_INVENTORY, UNALLOCATED = 0, 1, 2, 3

REASONS = (
    "exempt",
    "override",
    "permanent",
    "allocation",
    "installed",
    "covered_by_host",
    "capped_by_host",
    "missing_hardware",
)
EXEMPT, OVERRIDE, R_PERMANENT, R_ALLOCATION, INSTALLED, COVERED_BY_HOST, CAPPED_BY_HOST, MISSING_HARDWARE = range(8)

CONSUMER_TYPES = ("device", "user")
DEVICE_CONSUMER, USER_CONSUMER = 0, 1

USER_STATUSES = ("active", "inactive", "retired")
VM_RIGHTS = ("none", "host")
