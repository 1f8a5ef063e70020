"""The risk desk's simulations over the whole book: pure functions of the engine's vector `Book`
(no Django), so that the tests hold them to the Decimal reference on small books.

`shocks` builds the scenario library's price moves, `stress` measures one scenario, `cascade`
runs liquidation rounds with market impact, `impact` compares two parameter sets.
"""
