"""The exchanges, through ccxt: clients (``clients``), what is relied on of ccxt beyond its
unified API (``ccxt_internals``), and the gateway every upstream call goes through
(``gateway``)."""
