"""Discovery: nmap scans of the allowed ranges, kept in `assets`, with what each scan changed.

`targets` checks what was asked before nmap ever starts; `scan` runs the checked addresses
through the nmap port in chunks (progress as hosts finish); `store` upserts `assets` in bulk
and says what changed; `topology` lists them by subnet. Nothing here imports nmap: the
adapter is reached through `core.ports`.
"""
