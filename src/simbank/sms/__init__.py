"""Short messages and USSD as data: pure codecs, no I/O, no clock of their own.

``alphabet`` (GSM 03.38 characters ↔ septets), ``septets`` (7-bit packing), ``dcs`` (the data
coding schemes of 23.038), ``segments`` (a text split into what fits one SMS each),
``address`` (23.040 addresses, semi-octets, timestamps), ``udh`` (user data header,
concatenation), ``pdu`` (SMS-SUBMIT encoding; SMS-DELIVER, SMS-SUBMIT and SMS-STATUS-REPORT
decoding), ``reassembly`` (concatenated parts → one message, with a timeout on the caller's
time) and ``ussd`` (a ``+CUSD`` string decoded by its dcs and what real modems send instead).

The drivers read modems' answers with them; the daemon books each segment before it sends.
"""
