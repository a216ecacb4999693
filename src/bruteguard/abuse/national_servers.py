"""The national registries' whois servers, apart from their parsers (``national``): the
config checks registry names against them, and loading a config (every command, ``scan``
too) should not import the e-mail parsing the parsers need."""

__all__ = ["NATIONAL_WHOIS"]

NATIONAL_WHOIS = {
    "JPNIC": ("whois.nic.ad.jp", 43),
    "KRNIC": ("whois.kisa.or.kr", 43),
    "TWNIC": ("whois.twnic.net.tw", 43),
    "CNNIC": ("whois.cnnic.cn", 43),
    "IDNIC": ("whois.idnic.net", 43),
    "NIC.br": ("whois.registro.br", 43),
}
