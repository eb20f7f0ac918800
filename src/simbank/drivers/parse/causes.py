"""The 3GPP cause tables, one copy for the drivers (which read causes) and the simulator (which
reports them): TS 24.008 Annex H call-control causes, TS 24.008 §10.5.3.6 MM/GMM reject
causes with the TS 24.301 §9.9.3.9 EMM names modems also print.

The texts are the spec's, as modems print them in ``+CEER`` (``"Normal call clearing"``,
``"No Suitable Cells In Location Area"``).
"""

from __future__ import annotations

from typing import Final

# 24.008 Annex H cause values and their names (H.1 normal class ... H.7 interworking).
CALL_CAUSES: Final[dict[int, str]] = {
    1: "Unassigned (unallocated) number",
    3: "No route to destination",
    6: "Channel unacceptable",
    8: "Operator determined barring",
    16: "Normal call clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    21: "Call rejected",
    22: "Number changed",
    24: "Call rejected due to feature at the destination",
    25: "Pre-emption",
    26: "Non selected user clearing",
    27: "Destination out of order",
    28: "Invalid number format (incomplete number)",
    29: "Facility rejected",
    30: "Response to STATUS ENQUIRY",
    31: "Normal, unspecified",
    34: "No circuit/channel available",
    38: "Network out of order",
    41: "Temporary failure",
    42: "Switching equipment congestion",
    43: "Access information discarded",
    44: "Requested circuit/channel not available",
    47: "Resources unavailable, unspecified",
    49: "Quality of service unavailable",
    50: "Requested facility not subscribed",
    55: "Incoming calls barred within the CUG",
    57: "Bearer capability not authorized",
    58: "Bearer capability not presently available",
    63: "Service or option not available, unspecified",
    65: "Bearer service not implemented",
    68: "ACM equal to or greater than ACMmax",
    69: "Requested facility not implemented",
    70: "Only restricted digital information bearer capability is available",
    79: "Service or option not implemented, unspecified",
    81: "Invalid transaction identifier value",
    87: "User not member of CUG",
    88: "Incompatible destination",
    91: "Invalid transit network selection",
    95: "Semantically incorrect message",
    96: "Invalid mandatory information",
    97: "Message type non-existent or not implemented",
    98: "Message type not compatible with protocol state",
    99: "Information element non-existent or not implemented",
    100: "Conditional IE error",
    101: "Message not compatible with protocol state",
    102: "Recovery on timer expiry",
    111: "Protocol error, unspecified",
    127: "Interworking, unspecified",
}

# 24.008 §10.5.3.6 (MM) / §10.5.5.14 (GMM) reject causes, by number, as modems print them.
REJECT_CAUSES: Final[dict[int, str]] = {
    2: "IMSI unknown in HLR",
    3: "Illegal MS",
    4: "IMSI unknown in VLR",
    5: "IMEI not accepted",
    6: "Illegal ME",
    7: "GPRS services not allowed",
    8: "GPRS services and non-GPRS services not allowed",
    9: "MS identity cannot be derived by the network",
    10: "Implicitly detached",
    11: "PLMN not allowed",
    12: "Location Area not allowed",
    13: "Roaming not allowed in this location area",
    14: "GPRS services not allowed in this PLMN",
    15: "No Suitable Cells In Location Area",
    17: "Network failure",
    22: "Congestion",
}

# 24.301 §9.9.3.9 (EMM) names of the same causes, and token spellings (Altair
# ``EPS_AND_NON_EPS_SERVICES_NOT_ALLOWED``).
EPS_REJECT_CAUSES: Final[dict[int, tuple[str, ...]]] = {
    2: ("IMSI unknown in HSS",),
    3: ("Illegal UE",),
    7: ("EPS services not allowed",),
    8: ("EPS services and non-EPS services not allowed", "EPS and non-EPS services not allowed"),
    9: ("UE identity cannot be derived by the network",),
    12: ("Tracking area not allowed",),
    13: ("Roaming not allowed in this tracking area",),
    14: ("EPS services not allowed in this PLMN",),
    15: ("No suitable cells in tracking area",),
}
