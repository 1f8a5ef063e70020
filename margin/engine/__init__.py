"""The margin engine: pure margin mathematics, no Django.

`reference` (Decimal, one account, to be read) and `vector` (NumPy, the whole book) compute the
same figures; `stress`, `liquidation` and `explain` build on them; `request` and `cli` speak the
quote format of the shared test vectors. `options` (Decimal) and `options_vector` (NumPy) price
options by Black-76 and margin an account holding them by the portfolio grid of
vectors/OPTIONS.md; `scheme` joins the grid to the margin schemes.
"""
