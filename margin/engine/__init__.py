"""The margin engine: pure margin mathematics, no Django.

`reference` (Decimal, one account, to be read) and `vector` (NumPy, the whole book) compute the
same figures; `stress`, `liquidation` and `explain` build on them; `request` and `cli` speak the
quote format of the shared test vectors.
"""
