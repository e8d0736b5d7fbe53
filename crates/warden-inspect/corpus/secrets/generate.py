#!/usr/bin/env python3
"""Generate providers.jsonl: a recall corpus of credential FORMATS for the secret redactor.

Every value is produced here from a seeded PRNG in the documented shape of its provider
(prefix, length, alphabet, separators, and the checksum where the format has one).  None of
them is, or was ever, a live credential.  Run:

    python3 generate.py            # writes providers.jsonl next to this file and prints a summary
    python3 generate.py --check    # regenerate in memory and compare with the file on disk

Standard library only (Python >= 3.8).  The output is byte-for-byte reproducible for a given SEED.
"""

import base64
import hashlib
import hmac
import json
import os
import random
import re
import string
import struct
import sys
import urllib.parse
import uuid
import zlib

SEED = 0x5EC2E7  # change to get a different (but equally valid) corpus
R = random.Random(SEED)

UP = string.ascii_uppercase
LO = string.ascii_lowercase
DG = string.digits
ALNUM = UP + LO + DG
B62 = DG + UP + LO  # GitHub/npm base62 order for the checksum
HEX = "0123456789abcdef"
HEXU = HEX.upper()
B64 = UP + LO + DG + "+/"
B64URL = UP + LO + DG + "-_"
LOALNUM = LO + DG
UPALNUM = UP + DG
B32 = UP + "234567"
CRYPT64 = "./" + DG + UP + LO  # crypt(3) alphabet
BCRYPT64 = "./" + UP + LO + DG  # bcrypt alphabet


# --------------------------------------------------------------------------------------------
# primitive generators
# --------------------------------------------------------------------------------------------

def rs(n, alphabet=ALNUM):
    return "".join(R.choice(alphabet) for _ in range(n))


def rb(n):
    return bytes(R.getrandbits(8) for _ in range(n))


def hx(n, upper=False):
    return rs(n, HEXU if upper else HEX)


def num(n):
    return str(R.randint(1, 9)) + rs(n - 1, DG)


def ruuid():
    return str(uuid.UUID(int=R.getrandbits(128), version=4))


def b64e(b):
    return base64.b64encode(b).decode()


def b64u(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def b64_alnum(nbytes_text):
    """base64 of random alnum text, retried until the encoding has no + or /."""
    while True:
        out = b64e(nbytes_text())
        if "+" not in out and "/" not in out:
            return out


def b62(n, width=6):
    s = ""
    while n:
        n, r = divmod(n, 62)
        s = B62[r] + s
    return s.rjust(width, "0")


def crc_token(prefix, body_len=30):
    """GitHub / npm style: prefix + 30 random base62 + base62(CRC32(random part)), zero padded to 6.
    Documented at https://github.blog/2021-04-05-behind-githubs-new-authentication-token-formats/ ;
    verified against the ghp_ test vectors used by public secret scanners."""
    body = rs(body_len, B62)
    return prefix + body + b62(zlib.crc32(body.encode()))


def password(kind=None):
    kind = kind or R.choice(["rand", "rand", "rand", "words", "human"])
    if kind == "rand":
        return rs(R.randint(14, 24), ALNUM + "-_.~")
    if kind == "words":
        words = ["orbit", "maple", "copper", "lantern", "quartz", "harbor", "violet", "tundra",
                 "falcon", "ember", "saffron", "glacier", "mosaic", "pepper", "sierra", "nimbus"]
        return "-".join(R.sample(words, 3)) + "-" + str(R.randint(10, 99))
    if kind == "human":
        return R.choice(["Winter", "Summer", "Dragon", "Monkey", "Sunshine", "Autumn", "Pacific"]) + \
            str(R.randint(1970, 2025)) + R.choice("!#$*") + rs(3, ALNUM)
    if kind == "special":  # needs percent-encoding inside URIs
        return rs(6, ALNUM) + R.choice("@:/?#") + rs(5, ALNUM) + R.choice("!$&*+,;=") + rs(5, ALNUM)
    raise ValueError(kind)


def pw_conn():
    """password safe inside key=value;... strings (no ; = quote or space)."""
    return rs(R.randint(14, 22), ALNUM + "!#%^*-_.~@")


# --------------------------------------------------------------------------------------------
# checksums / encodings used by specific formats
# --------------------------------------------------------------------------------------------

BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _bech32_polymod(values):
    gen = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    chk = 1
    for v in values:
        b = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if ((b >> i) & 1) else 0
    return chk


def bech32_encode(hrp, data8):
    acc = bits = 0
    data = []
    for value in data8:
        acc = (acc << 8) | value
        bits += 8
        while bits >= 5:
            bits -= 5
            data.append((acc >> bits) & 31)
    if bits:
        data.append((acc << (5 - bits)) & 31)
    exp = [ord(x) >> 5 for x in hrp] + [0] + [ord(x) & 31 for x in hrp]
    pm = _bech32_polymod(exp + data + [0] * 6) ^ 1
    chk = [(pm >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(BECH32[d] for d in data + chk)


def crc24(data):
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def md4(msg):
    """Pure-python MD4 (RFC 1320); OpenSSL 3 no longer ships it."""
    def F(x, y, z): return (x & y) | (~x & z)
    def G(x, y, z): return (x & y) | (x & z) | (y & z)
    def H(x, y, z): return x ^ y ^ z
    def rol(v, s): v &= 0xFFFFFFFF; return ((v << s) | (v >> (32 - s))) & 0xFFFFFFFF
    ml = len(msg) * 8
    msg = msg + b"\x80" + b"\x00" * ((55 - len(msg)) % 64) + struct.pack("<Q", ml)
    a, b, c, d = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476
    for off in range(0, len(msg), 64):
        X = list(struct.unpack("<16I", msg[off:off + 64]))
        aa, bb, cc, dd = a, b, c, d
        # round 1
        for i in range(16):
            s = [3, 7, 11, 19][i % 4]
            if i % 4 == 0: a = rol(a + F(b, c, d) + X[i], s)
            elif i % 4 == 1: d = rol(d + F(a, b, c) + X[i], s)
            elif i % 4 == 2: c = rol(c + F(d, a, b) + X[i], s)
            else: b = rol(b + F(c, d, a) + X[i], s)
        # round 2
        for j, i in enumerate([0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15]):
            s = [3, 5, 9, 13][j % 4]
            if j % 4 == 0: a = rol(a + G(b, c, d) + X[i] + 0x5A827999, s)
            elif j % 4 == 1: d = rol(d + G(a, b, c) + X[i] + 0x5A827999, s)
            elif j % 4 == 2: c = rol(c + G(d, a, b) + X[i] + 0x5A827999, s)
            else: b = rol(b + G(c, d, a) + X[i] + 0x5A827999, s)
        # round 3
        for j, i in enumerate([0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15]):
            s = [3, 9, 11, 15][j % 4]
            if j % 4 == 0: a = rol(a + H(b, c, d) + X[i] + 0x6ED9EBA1, s)
            elif j % 4 == 1: d = rol(d + H(a, b, c) + X[i] + 0x6ED9EBA1, s)
            elif j % 4 == 2: c = rol(c + H(d, a, b) + X[i] + 0x6ED9EBA1, s)
            else: b = rol(b + H(c, d, a) + X[i] + 0x6ED9EBA1, s)
        a, b, c, d = [(x + y) & 0xFFFFFFFF for x, y in zip((a, b, c, d), (aa, bb, cc, dd))]
    return struct.pack("<4I", a, b, c, d)


assert md4(b"abc").hex() == "a448017aaf21d8525fc10ae87aa6729d"  # RFC 1320 test vector


def b64_crypt(data, alphabet=CRYPT64):
    """Little-endian 6-bit packing used by crypt(3)/bcrypt style encoders (length exact)."""
    out = []
    acc = bits = 0
    for byte in data:
        acc |= byte << bits
        bits += 8
        while bits >= 6:
            out.append(alphabet[acc & 63])
            acc >>= 6
            bits -= 6
    if bits:
        out.append(alphabet[acc & 63])
    return "".join(out)


def bcrypt_b64(data):
    """bcrypt's big-endian base64 variant (./A-Za-z0-9), no padding."""
    std = base64.b64encode(data).decode().rstrip("=")
    return std.translate(str.maketrans(UP + LO + DG + "+/", BCRYPT64))


# --------------------------------------------------------------------------------------------
# DER / PEM helpers (structurally valid ASN.1 with random numbers: plausible, never a real key)
# --------------------------------------------------------------------------------------------

def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tlv(tag, content):
    return bytes([tag]) + der_len(len(content)) + content


def der_int(i):
    b = i.to_bytes(max(1, (i.bit_length() + 7) // 8), "big")
    if b[0] & 0x80:
        b = b"\x00" + b
    return tlv(0x02, b)


def der_seq(*items):
    return tlv(0x30, b"".join(items))


def der_oid(dotted):
    parts = [int(x) for x in dotted.split(".")]
    out = bytes([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        enc = [p & 0x7F]
        p >>= 7
        while p:
            enc.append(0x80 | (p & 0x7F))
            p >>= 7
        out += bytes(reversed(enc))
    return tlv(0x06, out)


def der_oct(b):
    return tlv(0x04, b)


def der_bits(b):
    return tlv(0x03, b"\x00" + b)


DER_NULL = b"\x05\x00"


def rbig(bits):
    return R.getrandbits(bits) | (1 << (bits - 1)) | 1


def rsa_pkcs1_der(bits=2048):
    half = bits // 2
    return der_seq(der_int(0), der_int(rbig(bits)), der_int(65537), der_int(rbig(bits - 1)),
                   der_int(rbig(half)), der_int(rbig(half)), der_int(rbig(half - 1)),
                   der_int(rbig(half - 1)), der_int(rbig(half - 1)))


def rsa_pkcs8_der(bits=2048):
    return der_seq(der_int(0), der_seq(der_oid("1.2.840.113549.1.1.1"), DER_NULL),
                   der_oct(rsa_pkcs1_der(bits)))


def ec_point():
    return b"\x04" + rb(64)


def ec_sec1_der():
    return der_seq(der_int(1), der_oct(rb(32)), tlv(0xA0, der_oid("1.2.840.10045.3.1.7")),
                   tlv(0xA1, der_bits(ec_point())))


def ec_pkcs8_der():
    inner = der_seq(der_int(1), der_oct(rb(32)), tlv(0xA1, der_bits(ec_point())))
    return der_seq(der_int(0), der_seq(der_oid("1.2.840.10045.2.1"), der_oid("1.2.840.10045.3.1.7")),
                   der_oct(inner))


def ed25519_pkcs8_der():
    return der_seq(der_int(0), der_seq(der_oid("1.3.101.112")), der_oct(der_oct(rb(32))))


def dsa_der():
    return der_seq(der_int(0), der_int(rbig(2048)), der_int(rbig(256)), der_int(rbig(2047)),
                   der_int(rbig(2047)), der_int(rbig(255)))


def enc_pkcs8_der():
    params = der_seq(
        der_seq(der_oid("1.2.840.113549.1.5.12"),
                der_seq(der_oct(rb(16)), der_int(2048),
                        der_seq(der_oid("1.2.840.113549.2.9"), DER_NULL))),
        der_seq(der_oid("2.16.840.1.101.3.4.1.42"), der_oct(rb(16))))
    return der_seq(der_seq(der_oid("1.2.840.113549.1.5.13"), params), der_oct(rb(1232)))


def pem(label, der_or_b64, width=64, headers=None):
    body = der_or_b64 if isinstance(der_or_b64, str) else b64e(der_or_b64)
    lines = [body[i:i + width] for i in range(0, len(body), width)]
    head = ""
    if headers:
        head = "".join(f"{k}: {v}\n" for k, v in headers) + "\n"
    return f"-----BEGIN {label}-----\n{head}" + "\n".join(lines) + f"\n-----END {label}-----"


# --------------------------------------------------------------------------------------------
# SSH / PuTTY / PGP
# --------------------------------------------------------------------------------------------

def sshstr(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack(">I", len(b)) + b


def mpint(i):
    b = i.to_bytes((i.bit_length() + 7) // 8, "big")
    if b and b[0] & 0x80:
        b = b"\x00" + b
    return sshstr(b)


def openssh_key(kind="ed25519", encrypted=False, comment="deploy@ci-runner"):
    if kind == "ed25519":
        pk = rb(32)
        pub = sshstr("ssh-ed25519") + sshstr(pk)
        priv_body = sshstr("ssh-ed25519") + sshstr(pk) + sshstr(rb(32) + pk)
    elif kind == "ecdsa":
        q = ec_point()
        pub = sshstr("ecdsa-sha2-nistp256") + sshstr("nistp256") + sshstr(q)
        priv_body = pub + mpint(rbig(256))
    else:  # rsa
        n, e = rbig(3072), 65537
        pub = sshstr("ssh-rsa") + mpint(e) + mpint(n)
        priv_body = sshstr("ssh-rsa") + mpint(n) + mpint(e) + mpint(rbig(3071)) + \
            mpint(rbig(1535)) + mpint(rbig(1536)) + mpint(rbig(1536))
    check = rb(4)
    priv = check + check + priv_body + sshstr(comment)
    block = 16 if encrypted else 8
    i = 1
    while len(priv) % block:
        priv += bytes([i])
        i += 1
    if encrypted:
        cipher, kdf = "aes256-ctr", "bcrypt"
        kdfopts = sshstr(sshstr(rb(16)) + struct.pack(">I", 16))
        priv = rb(len(priv))  # ciphertext
        blob = b"openssh-key-v1\x00" + sshstr(cipher) + sshstr(kdf) + kdfopts + \
            struct.pack(">I", 1) + sshstr(pub) + sshstr(priv)
    else:
        blob = b"openssh-key-v1\x00" + sshstr("none") + sshstr("none") + sshstr(b"") + \
            struct.pack(">I", 1) + sshstr(pub) + sshstr(priv)
    return pem("OPENSSH PRIVATE KEY", blob, width=70)


def putty_key(version=3, kind="ed25519", comment=None):
    if kind == "ed25519":
        alg = "ssh-ed25519"
        pub = sshstr(alg) + sshstr(rb(32))
        priv = sshstr(rb(32))
    else:
        alg = "ssh-rsa"
        pub = sshstr(alg) + mpint(65537) + mpint(rbig(2048))
        priv = mpint(rbig(2047)) + mpint(rbig(1024)) + mpint(rbig(1024)) + mpint(rbig(1023))
    date = "%04d%02d%02d" % (R.randint(2019, 2024), R.randint(1, 12), R.randint(1, 28))
    comment = comment or (("eddsa-key-" if kind == "ed25519" else "rsa-key-") + date)
    enc = "none"
    macdata = sshstr(alg) + sshstr(enc) + sshstr(comment) + sshstr(pub) + sshstr(priv)
    if version == 3:
        mac = hmac.new(b"", macdata, hashlib.sha256).hexdigest()
    else:
        mac = hmac.new(hashlib.sha1(b"putty-private-key-file-mac-key").digest(), macdata,
                       hashlib.sha1).hexdigest()

    def lines(b):
        s = b64e(b)
        return [s[i:i + 64] for i in range(0, len(s), 64)]
    pl, vl = lines(pub), lines(priv)
    out = [f"PuTTY-User-Key-File-{version}: {alg}", f"Encryption: {enc}", f"Comment: {comment}",
           f"Public-Lines: {len(pl)}"] + pl + [f"Private-Lines: {len(vl)}"] + vl + [f"Private-MAC: {mac}"]
    return "\n".join(out)


def pgp_packet_old(tag, body):
    if len(body) < 256:
        return bytes([0x80 | (tag << 2) | 0]) + bytes([len(body)]) + body
    return bytes([0x80 | (tag << 2) | 1]) + struct.pack(">H", len(body)) + body


def pgp_mpi(b, bits=None):
    bits = bits or (len(b) * 8 - (8 - b[0].bit_length()))
    return struct.pack(">H", bits) + b


def pgp_private_block(uid):
    t = struct.pack(">I", R.randint(1_600_000_000, 1_720_000_000))
    ed_oid = bytes.fromhex("2b06010401da470f01")
    pub = b"\x04" + t + bytes([22, len(ed_oid)]) + ed_oid + pgp_mpi(b"\x40" + rb(32), 263)
    sec = rb(32)
    sec = bytes([sec[0] | 0x40 & 0x7F]) + sec[1:]
    secmpi = pgp_mpi(sec)
    primary = pub + b"\x00" + secmpi + struct.pack(">H", sum(secmpi) & 0xFFFF)
    cv_oid = bytes.fromhex("2b060104019755010501")
    subpub = b"\x04" + t + bytes([18, len(cv_oid)]) + cv_oid + pgp_mpi(b"\x40" + rb(32), 263) + \
        bytes.fromhex("03010807")
    subsec = pgp_mpi(rb(32))
    sub = subpub + b"\x00" + subsec + struct.pack(">H", sum(subsec) & 0xFFFF)

    def sig(sigtype):
        hashed = bytes.fromhex("0516") + b"\x21" + rb(21) + b"\x05\x02" + t
        unhashed = b"\x09\x10" + rb(8)
        return b"\x04" + bytes([sigtype, 22, 10]) + struct.pack(">H", len(hashed)) + hashed + \
            struct.pack(">H", len(unhashed)) + unhashed + rb(2) + pgp_mpi(b"\x7f" + rb(31)) + \
            pgp_mpi(b"\x0f" + rb(31))
    data = pgp_packet_old(5, primary) + pgp_packet_old(13, uid.encode()) + pgp_packet_old(2, sig(0x13)) + \
        pgp_packet_old(7, sub) + pgp_packet_old(2, sig(0x18))
    body = b64e(data)
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    chk = b64e(crc24(data).to_bytes(3, "big"))
    return "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n" + "\n".join(lines) + f"\n={chk}\n" + \
        "-----END PGP PRIVATE KEY BLOCK-----"


# --------------------------------------------------------------------------------------------
# JWT
# --------------------------------------------------------------------------------------------

def jwt(header, payload, siglen):
    enc = lambda o: b64u(json.dumps(o, separators=(",", ":")).encode())
    return enc(header) + "." + enc(payload) + "." + b64u(rb(siglen))


def ts():
    return R.randint(1_700_000_000, 1_760_000_000)


# --------------------------------------------------------------------------------------------
# corpus assembly
# --------------------------------------------------------------------------------------------

ENTRIES = []
VENDOR_OF = {}
CATEGORY_OF = {}
_counters = {}


def slug(s):
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")


def add(vendor, fmt, kind, source, secret, text, category="saas"):
    provider = f"{vendor} ({fmt})" if fmt else vendor
    sid = slug(provider)
    _counters[sid] = _counters.get(sid, 0) + 1
    assert secret and secret in text, (provider, secret, text)
    ENTRIES.append({"id": f"{sid}-{_counters[sid]}", "provider": provider, "kind": kind,
                    "secret": secret, "text": text, "source": source})
    VENDOR_OF[provider] = vendor
    CATEGORY_OF[provider] = category


def stamp():
    return "2024-%02d-%02dT%02d:%02d:%02d.%03dZ" % (R.randint(1, 12), R.randint(1, 28), R.randint(0, 23),
                                                   R.randint(0, 59), R.randint(0, 59), R.randint(0, 999))


def camel(s):
    parts = re.split(r"[_\-. ]+", s)
    return parts[0].lower() + "".join(p.capitalize() for p in parts[1:])


def pascal(s):
    return "".join(p.capitalize() for p in re.split(r"[_\-. ]+", s) if p)


class Spec:
    def __init__(self, vendor, env, field, header, url, ident):
        self.vendor, self.env, self.field, self.header, self.url = vendor, env, field, header, url
        self.ident = ident  # lowercase identifier for the service
        self.host = urllib.parse.urlparse(url).netloc
        self.path = urllib.parse.urlparse(url).path or "/"

    def hval(self, s):
        return self.header[1].format(s)


# Generic context styles.  Each takes (secret, spec) and returns the text.  Styles that need an
# HTTP header are skipped for providers without one.
STYLES = {
    "env": lambda s, p: f"{p.env}={s}",
    "export": lambda s, p: f'export {p.env}="{s}"',
    "dotenv": lambda s, p: f"# {p.vendor}\n{p.env}={s}\nAPP_ENV=production\nLOG_LEVEL=info",
    "yaml": lambda s, p: f"{p.ident}:\n  {p.field}: {s}\n  timeout_seconds: 30\n  retries: 3",
    "json": lambda s, p: json.dumps({p.ident: {camel(p.field): s, "enabled": True}}, indent=2),
    "python": lambda s, p: f'import os\n\n{p.field.upper()} = os.environ.get("{p.env}", "{s}")',
    "python_kw": lambda s, p: f'client = {pascal(p.ident)}Client({p.field}="{s}", timeout=10)',
    "js": lambda s, p: f"const {camel(p.field)} = process.env.{p.env} || '{s}';",
    "js_obj": lambda s, p: f"export default {{\n  {camel(p.ident)}: {{\n    {camel(p.field)}: \"{s}\",\n  }},\n}};",
    "bare": lambda s, p: s,
    "toml": lambda s, p: f'[{p.ident}]\n{p.field} = "{s}"\nendpoint = "{p.url}"',
    "docker": lambda s, p: f"docker run --rm -e {p.env}={s} ghcr.io/acme/{p.ident}-sync:1.8.0",
    "compose": lambda s, p: f"services:\n  worker:\n    image: acme/worker:2.1\n    environment:\n      - {p.env}={s}",
    "k8s": lambda s, p: (f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {p.ident}-credentials\n"
                         f"type: Opaque\nstringData:\n  {p.env}: \"{s}\""),
    "go": lambda s, p: f'cfg := &Config{{\n\t{pascal(p.field)}: "{s}",\n\tBaseURL: "{p.url}",\n}}',
    "gha": lambda s, p: f"jobs:\n  sync:\n    runs-on: ubuntu-latest\n    env:\n      {p.env}: {s}\n    steps:\n      - run: make sync",
    "cli": lambda s, p: f"$ {p.ident} configure --{p.field.replace('_', '-')} {s}",
    "terraform": lambda s, p: f'variable "{p.ident}_{p.field}" {{\n  type      = string\n  default   = "{s}"\n  sensitive = true\n}}',
    "properties": lambda s, p: f"{p.ident}.{p.field.replace('_', '-')}={s}",
    "ruby": lambda s, p: f"{pascal(p.ident)}.configure do |config|\n  config.{p.field} = '{s}'\nend",
    "php": lambda s, p: f"'{p.ident}' => [\n    '{p.field}' => '{s}',\n],",
    "csharp": lambda s, p: f'var client = new {pascal(p.ident)}Client(new {pascal(p.ident)}Options {{ {pascal(p.field)} = "{s}" }});',
    "java": lambda s, p: f'private static final String {p.env} = "{s}";',
    "chat": lambda s, p: f"anyone know why {p.vendor} keeps returning 401? I'm setting {p.env}={s} in my shell",
    "xml": lambda s, p: f'<appSettings>\n  <add key="{pascal(p.ident)}{pascal(p.field)}" value="{s}" />\n</appSettings>',
    "ini": lambda s, p: f"[{p.ident}]\n{p.field} = {s}\nregion = us-east-1",
    "powershell": lambda s, p: f'$env:{p.env} = "{s}"',
    "systemd": lambda s, p: f'[Service]\nEnvironment="{p.env}={s}"\nExecStart=/usr/local/bin/{p.ident}-agent',
    "ansible": lambda s, p: f"{p.ident}_{p.field}: \"{s}\"",
    "notebook": lambda s, p: f"%env {p.env}={s}",
    "error": lambda s, p: (f"Traceback (most recent call last):\n  File \"/srv/app/jobs/sync.py\", line 88, in run\n"
                           f"    resp.raise_for_status()\nrequests.exceptions.HTTPError: 401 Client Error: Unauthorized "
                           f"for url: {p.url}?{p.field}={s}"),
    # header-based
    "curl": lambda s, p: f'curl -sS -H "{p.header[0]}: {p.hval(s)}" {p.url}',
    "curl_multi": lambda s, p: (f"curl -X POST {p.url} \\\n  -H 'Content-Type: application/json' \\\n"
                                f"  -H '{p.header[0]}: {p.hval(s)}' \\\n  -d '{{\"limit\": 50}}'"),
    "log": lambda s, p: (f'{stamp()} DEBUG {p.ident}.http request method=GET url={p.url} '
                         f'headers={{"{p.header[0]}": "{p.hval(s)}", "User-Agent": "acme-worker/3.2"}}'),
    "http": lambda s, p: f"GET {p.path} HTTP/1.1\nHost: {p.host}\n{p.header[0]}: {p.hval(s)}\nAccept: application/json",
    "requests": lambda s, p: f'resp = requests.get("{p.url}", headers={{"{p.header[0]}": "{p.hval(s)}"}})',
    "fetch": lambda s, p: f"await fetch('{p.url}', {{ headers: {{ '{p.header[0]}': '{p.hval(s)}' }} }});",
    "httpie": lambda s, p: f"http GET {p.url} '{p.header[0]}:{p.hval(s)}'",
}
HEADER_STYLES = {"curl", "curl_multi", "log", "http", "requests", "fetch", "httpie"}
STYLE_NAMES = sorted(STYLES)


def saas(vendor, fmt, kind, source, gen, n=2, env=None, field="api_key", header=("Authorization", "Bearer {}"),
         url=None, custom=(), styles=None, ident=None, category="saas"):
    ident = ident or slug(vendor).replace("-", "")
    env = env or (re.sub(r"[^A-Z0-9]+", "_", vendor.upper()).strip("_") + "_API_KEY")
    url = url or f"https://api.{ident}.com/v1/me"
    spec = Spec(vendor, env, field, header, url, ident)
    pool = [st for st in (styles or STYLE_NAMES) if header or st not in HEADER_STYLES]
    chosen = R.sample(pool, max(0, n - len(custom)))
    for i in range(n):
        s = gen()
        if i < len(custom):
            text = custom[i](s, spec) if callable(custom[i]) else custom[i].format(s=s)
        else:
            text = STYLES[chosen[i - len(custom)]](s, spec)
        add(vendor, fmt, kind, source, s, text, category)


GL = "gitleaks config/gitleaks.toml, rule {}"
TH = "trufflehog pkg/detectors/{}"
MSU = "microsoft/security-utilities GeneratedRegexPatterns (identifiable keys), {}"


# ============================================================================================
# 1. SaaS / developer-platform API tokens
# ============================================================================================

def build_saas():
    GHB = "https://github.blog/2021-04-05-behind-githubs-new-authentication-token-formats/; " + \
        GL.format("github-pat / github-oauth / github-app-token / github-refresh-token")
    # --- GitHub ------------------------------------------------------------------------------
    saas("GitHub", "classic personal access token ghp_", "api_token", GHB, lambda: crc_token("ghp_"), n=3,
         env="GITHUB_TOKEN", field="token", header=("Authorization", "token {}"), url="https://api.github.com/user",
         custom=[lambda s, p: f"git clone https://octocat:{s}@github.com/acme-corp/payments-service.git",
                 lambda s, p: f"$ echo {s} | gh auth login --with-token"])
    saas("GitHub", "OAuth access token gho_", "oauth_token", GHB, lambda: crc_token("gho_"), env="GH_OAUTH_TOKEN",
         field="access_token", header=("Authorization", "Bearer {}"), url="https://api.github.com/user/repos",
         custom=[lambda s, p: json.dumps({"access_token": s, "token_type": "bearer", "scope": "repo,gist"})])
    saas("GitHub", "user-to-server token ghu_", "oauth_token", GHB, lambda: crc_token("ghu_"), env="GITHUB_USER_TOKEN",
         field="token", url="https://api.github.com/user/installations")
    saas("GitHub", "installation token ghs_", "api_token", GHB, lambda: crc_token("ghs_"), env="GITHUB_TOKEN",
         field="token", url="https://api.github.com/repos/acme/infra/contents",
         custom=[lambda s, p: f"remote: https://x-access-token:{s}@github.com/acme/infra.git"])
    saas("GitHub", "refresh token ghr_", "oauth_token", GHB,
         lambda: crc_token("ghr_"),
         env="GITHUB_REFRESH_TOKEN", field="refresh_token", header=None,
         custom=[lambda s, p: "grant_type=refresh_token&client_id=Iv1.8a61f9b3a7aba766&client_secret=" + hx(40) +
                 "&refresh_token=" + s])
    saas("GitHub", "fine-grained personal access token github_pat_", "api_token", GL.format("github-fine-grained-pat") +
         "; https://docs.github.com/en/authentication/keeping-your-account-and-data-secure/managing-your-personal-access-tokens",
         lambda: "github_pat_11" + rs(20, UPALNUM) + "_" + rs(59, B62), n=3, env="GH_TOKEN", field="token",
         url="https://api.github.com/repos/acme/site/actions/runs",
         custom=[lambda s, p: f"[credential]\n\thelper = store\n# ~/.git-credentials\nhttps://ci-bot:{s}@github.com"])

    # --- GitLab ------------------------------------------------------------------------------
    GLD = "https://docs.gitlab.com/ee/security/tokens/#token-prefixes; "
    saas("GitLab", "personal access token glpat-", "api_token", GLD + GL.format("gitlab-pat"),
         lambda: "glpat-" + rs(20, ALNUM + "-_"), n=3, env="GITLAB_TOKEN", field="private_token",
         header=("PRIVATE-TOKEN", "{}"), url="https://gitlab.com/api/v4/projects",
         custom=[lambda s, p: f"git remote set-url origin https://oauth2:{s}@gitlab.com/acme/backend.git"])
    saas("GitLab", "routable personal access token glpat-", "api_token", GLD + GL.format("gitlab-pat-routable"),
         lambda: "glpat-" + b64u(rb(30)) + "." + rs(2, LOALNUM) + rs(7, LOALNUM), env="GITLAB_TOKEN",
         field="private_token", header=("PRIVATE-TOKEN", "{}"), url="https://gitlab.example.com/api/v4/user")
    saas("GitLab", "pipeline trigger token glptt-", "api_token", GLD + GL.format("gitlab-ptt"),
         lambda: "glptt-" + hx(40), field="token", header=None, env="CI_TRIGGER_TOKEN",
         custom=[lambda s, p: f"curl -X POST --fail -F token={s} -F ref=main https://gitlab.com/api/v4/projects/4821/trigger/pipeline"])
    saas("GitLab", "deploy token gldt-", "api_token", GLD + GL.format("gitlab-deploy-token"),
         lambda: "gldt-" + rs(20, ALNUM + "-_"), field="password", header=None, env="CI_DEPLOY_PASSWORD",
         custom=[lambda s, p: f"docker login registry.gitlab.com -u gitlab+deploy-token-1172 -p {s}"])
    saas("GitLab", "runner authentication token glrt-", "api_token", GLD + GL.format("gitlab-runner-authentication-token"),
         lambda: "glrt-" + rs(20, ALNUM + "-_"), field="token", header=None, env="RUNNER_TOKEN",
         custom=[lambda s, p: f'[[runners]]\n  name = "k8s-runner-02"\n  url = "https://gitlab.com"\n  token = "{s}"\n  executor = "kubernetes"'])
    saas("GitLab", "runner registration token GR1348941", "api_token", GLD + GL.format("gitlab-rrt"),
         lambda: "GR1348941" + rs(20, ALNUM + "-_"), field="registration_token", header=None, env="REGISTRATION_TOKEN",
         custom=[lambda s, p: f"gitlab-runner register --non-interactive --url https://gitlab.com/ --registration-token {s} --executor docker"])
    saas("GitLab", "CI/CD job token glcbt-", "api_token", GLD + GL.format("gitlab-cicd-job-token"),
         lambda: "glcbt-" + rs(R.randint(2, 5), ALNUM) + "_" + rs(20, ALNUM + "-_"), field="job_token",
         header=("JOB-TOKEN", "{}"), env="CI_JOB_TOKEN", url="https://gitlab.com/api/v4/projects/77/packages/generic/app/1.0/app.tgz")
    saas("GitLab", "feed token glft-", "api_token", GLD + GL.format("gitlab-feed-token"),
         lambda: "glft-" + rs(20, ALNUM + "-_"), header=None, field="feed_token",
         custom=[lambda s, p: f"https://gitlab.com/dashboard/issues.atom?feed_token={s}&state=opened"])
    saas("GitLab", "OAuth application secret gloas-", "oauth_secret", GLD + GL.format("gitlab-oauth-app-secret"),
         lambda: "gloas-" + rs(64, HEX), field="client_secret", header=None, env="GITLAB_OAUTH_SECRET")
    saas("GitLab", "Kubernetes agent token glagent-", "api_token", GLD + GL.format("gitlab-kubernetes-agent-token"),
         lambda: "glagent-" + rs(50, ALNUM + "-_"), field="token", header=None, env="AGENT_TOKEN",
         custom=[lambda s, p: f"helm upgrade --install k8s-agent gitlab/gitlab-agent --set config.token={s} --set config.kasAddress=wss://kas.gitlab.com"])
    saas("GitLab", "SCIM token glsoat-", "api_token", GLD + GL.format("gitlab-scim-token"),
         lambda: "glsoat-" + rs(20, ALNUM + "-_"), field="scim_token", url="https://gitlab.com/api/scim/v2/groups/acme/Users")
    saas("GitLab", "incoming mail token glimt-", "api_token", GLD + GL.format("gitlab-incoming-mail-token"),
         lambda: "glimt-" + rs(25, ALNUM + "-_"), field="incoming_email_token", header=None,
         custom=[lambda s, p: f"incoming+acme-support-1291-{s}-issue@incoming.gitlab.com"])

    # --- Atlassian / Bitbucket ----------------------------------------------------------------
    saas("Atlassian", "API token ATATT3", "api_token", GL.format("atlassian-api-token") +
         "; https://support.atlassian.com/atlassian-account/docs/manage-api-tokens-for-your-atlassian-account/",
         lambda: "ATATT3xFfGF0" + rs(171, ALNUM + "-_") + "=" + hx(8, True), n=3, env="JIRA_API_TOKEN",
         field="api_token", header=None,
         custom=[lambda s, p: f"curl -u ops-bot@acme.io:{s} -H 'Accept: application/json' https://acme.atlassian.net/rest/api/3/myself",
                 lambda s, p: f"jira:\n  server: https://acme.atlassian.net\n  email: ops-bot@acme.io\n  api_token: {s}"])
    saas("Atlassian", "legacy API token", "api_token", GL.format("atlassian-api-token"),
         lambda: rs(20, LOALNUM + UP) + hx(4), env="CONFLUENCE_API_TOKEN", field="confluence_token", header=None,
         styles=["env", "yaml", "python", "ini"])
    saas("Bitbucket", "app password ATBB", "api_token", "https://support.atlassian.com/bitbucket-cloud/docs/app-passwords/; "
         "public scanner rule ATBB[A-Za-z0-9_=.-]{16,}",
         lambda: "ATBB" + rs(24, ALNUM) + hx(8, True), env="BITBUCKET_APP_PASSWORD", field="app_password", header=None,
         custom=[lambda s, p: f"git clone https://ci-user:{s}@bitbucket.org/acme/mobile-app.git"])
    saas("Bitbucket", "repository access token ATCTT3", "api_token",
         "https://support.atlassian.com/bitbucket-cloud/docs/repository-access-tokens/",
         lambda: "ATCTT3xFfGN0" + rs(171, ALNUM + "-_") + "=" + hx(8, True), env="BITBUCKET_ACCESS_TOKEN",
         field="access_token", url="https://api.bitbucket.org/2.0/repositories/acme/api/pullrequests")
    saas("Bitbucket Data Center", "HTTP access token BBDC-", "api_token",
         "Bitbucket Data Center docs, HTTP access tokens; public scanner rule BBDC-[A-Za-z0-9+/@_-]{40,50}",
         lambda: "BBDC-" + rs(44, ALNUM + "+/"), env="BITBUCKET_SERVER_TOKEN", field="token",
         url="https://bitbucket.acme.internal/rest/api/1.0/projects")
    saas("Azure DevOps", "personal access token (52-char legacy)", "api_token", TH.format("azuredevopspersonalaccesstoken"),
         lambda: rs(52, LO + "234567"), env="AZURE_DEVOPS_EXT_PAT", field="pat", header=None,
         custom=[lambda s, p: f"git clone https://build:{s}@dev.azure.com/acme/Platform/_git/platform-api",
                 lambda s, p: f"echo {s} | az devops login --organization https://dev.azure.com/acme"])
    saas("Azure DevOps", "personal access token (84-char AZDO)", "api_token", MSU.format("SEC101/200 HISv2 with AZDO signature"),
         lambda: rs(52, ALNUM) + "JQQJ99" + rs(1, ALNUM) + rs(1, "ABCDEFGHIJKL") + rs(16, ALNUM) + "AZDO" + rs(4, ALNUM),
         env="AZURE_DEVOPS_PAT", field="pat", header=("Authorization", "Basic {}"), n=2,
         styles=["env", "yaml", "powershell", "json"])

    # --- package registries -------------------------------------------------------------------
    saas("npm", "access token npm_", "api_token", "https://github.blog/2021-09-23-announcing-npms-new-access-token-format/; " +
         GL.format("npm-access-token"), lambda: crc_token("npm_"), n=3, env="NPM_TOKEN", field="token", header=None,
         custom=[lambda s, p: f"//registry.npmjs.org/:_authToken={s}\nregistry=https://registry.npmjs.org/",
                 lambda s, p: f"- run: npm publish --access public\n  env:\n    NODE_AUTH_TOKEN: {s}"])

    def pypi():
        ident = ruuid().encode()
        caveat = json.dumps({"version": 1, "permissions": R.choice(["user", {"projects": ["acme-sdk"]}])},
                            separators=(",", ":")).encode()
        mac = (b"\x02" + b"\x01\x08pypi.org" + b"\x02" + bytes([len(ident)]) + ident + b"\x00" +
               b"\x02" + bytes([len(caveat)]) + caveat + b"\x00\x00" + b"\x06\x20" + rb(32))
        return "pypi-" + b64u(mac)
    saas("PyPI", "upload token pypi-AgEIcHlwaS5vcmc", "api_token", "https://pypi.org/help/#apitoken; " + GL.format("pypi-upload-token"),
         pypi, n=3, env="TWINE_PASSWORD", field="password", header=None,
         custom=[lambda s, p: f"[pypi]\n  username = __token__\n  password = {s}",
                 lambda s, p: f"twine upload --non-interactive -u __token__ -p {s} dist/*"])
    saas("RubyGems", "API key rubygems_", "api_token", GL.format("rubygems-api-token"),
         lambda: "rubygems_" + hx(48), env="GEM_HOST_API_KEY", field="api_key", header=("Authorization", "{}"),
         url="https://rubygems.org/api/v1/gems",
         custom=[lambda s, p: f"---\n:rubygems_api_key: {s}\n"])
    saas("NuGet", "API key oy2", "api_token", "https://learn.microsoft.com/en-us/nuget/nuget-org/scoped-api-keys; public scanner rule oy2[a-z0-9]{43}",
         lambda: "oy2" + rs(43, LOALNUM), env="NUGET_API_KEY", field="api_key", header=("X-NuGet-ApiKey", "{}"),
         url="https://www.nuget.org/api/v2/package",
         custom=[lambda s, p: f"dotnet nuget push bin/Release/Acme.Core.3.2.0.nupkg --api-key {s} --source https://api.nuget.org/v3/index.json"])
    saas("crates.io", "API token cio", "api_token", "https://doc.rust-lang.org/cargo/reference/config.html#credentials; public scanner rule cio[a-zA-Z0-9]{32}",
         lambda: "cio" + rs(32, ALNUM), env="CARGO_REGISTRY_TOKEN", field="token", header=None,
         custom=[lambda s, p: f'[registry]\ntoken = "{s}"'])
    saas("Clojars", "deploy token CLOJARS_", "api_token", GL.format("clojars-api-token"),
         lambda: "CLOJARS_" + rs(60, LOALNUM), env="CLOJARS_PASSWORD", field="password", header=None)
    saas("Docker Hub", "personal access token dckr_pat_", "api_token",
         "https://docs.docker.com/security/for-developers/access-tokens/; public scanner rule dckr_pat_[A-Za-z0-9_-]{27}",
         lambda: "dckr_pat_" + rs(27, ALNUM + "-_"), n=3, env="DOCKERHUB_TOKEN", field="password", header=None,
         custom=[lambda s, p: f"echo {s} | docker login -u acmebuild --password-stdin",
                 lambda s, p: json.dumps({"auths": {"https://index.docker.io/v1/": {"username": "acmebuild", "password": s}}}, indent=2)])
    saas("JFrog Artifactory", "API key AKCp", "api_token", GL.format("artifactory-api-key"),
         lambda: "AKCp" + rs(69, ALNUM), env="ARTIFACTORY_API_KEY", field="api_key", header=("X-JFrog-Art-Api", "{}"),
         url="https://acme.jfrog.io/artifactory/api/repositories")
    saas("JFrog Artifactory", "reference token cmVmd", "api_token", GL.format("artifactory-reference-token"),
         lambda: b64_alnum(lambda: ("reftkn:01:%d:" % R.randint(1_750_000_000, 1_999_999_999)).encode() + rs(27).encode()),
         env="JFROG_ACCESS_TOKEN", field="access_token", url="https://acme.jfrog.io/artifactory/api/system/ping")

    # --- IaC / secrets managers ------------------------------------------------------------------
    saas("Terraform Cloud", "user/team API token .atlasv1.", "api_token", GL.format("hashicorp-tf-api-token"),
         lambda: rs(14, LOALNUM + UP) + ".atlasv1." + rs(67, ALNUM + "-_"), n=3, env="TF_TOKEN_app_terraform_io",
         field="token", url="https://app.terraform.io/api/v2/organizations",
         custom=[lambda s, p: f'credentials "app.terraform.io" {{\n  token = "{s}"\n}}',
                 lambda s, p: json.dumps({"credentials": {"app.terraform.io": {"token": s}}}, indent=2)])
    saas("Pulumi", "access token pul-", "api_token", GL.format("pulumi-api-token"),
         lambda: "pul-" + hx(40), env="PULUMI_ACCESS_TOKEN", field="access_token", header=("Authorization", "token {}"),
         url="https://api.pulumi.com/api/user/stacks")
    saas("HashiCorp Vault", "service token hvs.", "api_token", GL.format("vault-service-token") +
         "; https://developer.hashicorp.com/vault/docs/concepts/tokens",
         lambda: "hvs.CAESI" + rs(R.randint(86, 100), ALNUM + "-_"), n=3, env="VAULT_TOKEN", field="token",
         header=("X-Vault-Token", "{}"), url="https://vault.acme.internal:8200/v1/secret/data/payments")
    saas("HashiCorp Vault", "batch token hvb.", "api_token", GL.format("vault-batch-token"),
         lambda: "hvb.AAAAAQ" + rs(R.randint(140, 170), ALNUM + "-_"), env="VAULT_TOKEN", field="token",
         header=("X-Vault-Token", "{}"), url="https://vault.acme.internal:8200/v1/auth/token/lookup-self")
    saas("HashiCorp Vault", "legacy service token s.", "api_token", GL.format("vault-service-token"),
         lambda: "s." + rs(24, ALNUM), env="VAULT_TOKEN", field="token", header=("X-Vault-Token", "{}"),
         url="https://vault.acme.internal:8200/v1/sys/mounts")
    saas("Doppler", "personal token dp.pt.", "api_token", GL.format("doppler-api-token") +
         "; https://docs.doppler.com/docs/Auth-token-formats",
         lambda: "dp.pt." + rs(43, ALNUM), env="DOPPLER_TOKEN", field="token", url="https://api.doppler.com/v3/me")
    saas("Doppler", "service token dp.st.", "api_token", "https://docs.doppler.com/docs/Auth-token-formats",
         lambda: "dp.st." + R.choice(["prd", "dev", "stg"]) + "." + rs(43, ALNUM), env="DOPPLER_TOKEN",
         field="token", header=None, styles=["env", "docker", "k8s", "gha", "systemd"])
    saas("Doppler", "CLI token dp.ct.", "api_token", "https://docs.doppler.com/docs/Auth-token-formats",
         lambda: "dp.ct." + rs(R.choice([40, 43, 44]), ALNUM), env="DOPPLER_TOKEN", field="token", header=None,
         custom=[lambda s, p: f"scoped:\n    /home/ci/app:\n        token: {s}\n        enclave.project: backend\n        enclave.config: prd"])
    saas("Doppler", "SCIM / audit token dp.scim. dp.audit.", "api_token", "https://docs.doppler.com/docs/Auth-token-formats",
         lambda: R.choice(["dp.scim.", "dp.audit."]) + rs(43, ALNUM), env="DOPPLER_SCIM_TOKEN", field="token",
         url="https://api.doppler.com/scim/v2/Users")
    saas("Doppler", "service account token dp.sa.", "api_token", "https://docs.doppler.com/docs/Auth-token-formats",
         lambda: "dp.sa." + rs(43, ALNUM), env="DOPPLER_TOKEN", field="token", url="https://api.doppler.com/v3/projects")

    def op_token():
        blob = {"signInAddress": "acme.1password.com", "userAuth": {"method": "SRPg-4096", "alg": "PBES2g-HS256",
                                                                   "iterations": 650000, "salt": b64u(rb(16))},
                "email": rs(26, LO) + "@1passwordserviceaccounts.com", "srpX": hx(64),
                "muk": {"alg": "A256GCM", "ext": False, "k": b64u(rb(32)), "key_ops": ["encrypt", "decrypt"],
                        "kty": "oct", "kid": "mp"}, "secretKey": "A3-" + rs(6, UPALNUM) + "-" + rs(6, UPALNUM) + "-" +
                "-".join(rs(5, UPALNUM) for _ in range(4)), "throttleSecret": {"seed": hx(64), "uuid": rs(26, UPALNUM)},
                "deviceUuid": rs(26, LOALNUM)}
        return "ops_" + b64e(json.dumps(blob, separators=(",", ":")).encode()).rstrip("=")
    saas("1Password", "service account token ops_", "api_token", GL.format("1password-service-account-token"),
         op_token, env="OP_SERVICE_ACCOUNT_TOKEN", field="token", header=None,
         styles=["env", "export", "gha", "k8s", "docker"])
    saas("1Password", "account secret key A3-", "encryption_key", GL.format("1password-secret-key"),
         lambda: "A3-" + rs(6, UPALNUM) + "-" + rs(6, UPALNUM) + "-" + "-".join(rs(5, UPALNUM) for _ in range(4)),
         env="OP_SECRET_KEY", field="secret_key", header=None,
         custom=[lambda s, p: f"Emergency Kit\nSign-in address: https://acme.1password.com\nEmail: finance@acme.io\nSecret Key: {s}"])
    saas("Bitwarden Secrets Manager", "machine account access token", "api_token",
         "https://bitwarden.com/help/access-tokens/",
         lambda: "0." + ruuid() + "." + rs(30, ALNUM) + ":" + b64e(rb(16)), env="BWS_ACCESS_TOKEN", field="access_token",
         header=None, styles=["env", "export", "gha", "docker"])
    saas("age", "secret key AGE-SECRET-KEY-1", "encryption_key",
         "https://github.com/C2SP/C2SP/blob/main/age.md (bech32, HRP age-secret-key-); " + GL.format("age-secret-key"),
         lambda: bech32_encode("age-secret-key-", rb(32)).upper(), n=3, env="SOPS_AGE_KEY", field="key", header=None,
         custom=[lambda s, p: f"# created: 2024-02-11T10:14:55+01:00\n# public key: {bech32_encode('age', rb(32))}\n{s}",
                 lambda s, p: f"export SOPS_AGE_KEY={s}\nsops -d secrets/prod.enc.yaml"])
    saas("Postman", "API key PMAK-", "api_token", GL.format("postman-api-token"),
         lambda: "PMAK-" + hx(24) + "-" + hx(34), env="POSTMAN_API_KEY", field="api_key", header=("X-Api-Key", "{}"),
         url="https://api.getpostman.com/collections")
    saas("ReadMe", "API key rdme_", "api_token", GL.format("readme-api-token"),
         lambda: "rdme_" + rs(70, LOALNUM), env="README_API_KEY", field="api_key", header=("Authorization", "Basic {}"),
         url="https://dash.readme.com/api/v1/version")
    saas("Prefect", "API key pnu_", "api_token", GL.format("prefect-api-token"),
         lambda: "pnu_" + rs(36, ALNUM), env="PREFECT_API_KEY", field="api_key",
         url="https://api.prefect.cloud/api/me/")

    # --- observability ------------------------------------------------------------------------
    def sentry_org():
        payload = {"iat": round(ts() + R.random(), 6), "url": "https://sentry.io", "region_url": "https://us.sentry.io",
                   "org": R.choice(["acme", "globex", "initech", "umbrella-labs"])}
        return "sntrys_" + b64e(json.dumps(payload, separators=(",", ":")).encode()).rstrip("=") + "_" + rs(43, ALNUM + "+/")
    saas("Sentry", "organization auth token sntrys_", "api_token", GL.format("sentry-org-token"), sentry_org, n=3,
         env="SENTRY_AUTH_TOKEN", field="auth_token", url="https://sentry.io/api/0/organizations/acme/releases/",
         custom=[lambda s, p: f"[auth]\ntoken={s}"])
    saas("Sentry", "user auth token sntryu_", "api_token", GL.format("sentry-user-token"),
         lambda: "sntryu_" + hx(64), env="SENTRY_AUTH_TOKEN", field="auth_token",
         url="https://sentry.io/api/0/projects/")
    saas("Sentry", "legacy auth token (64 hex)", "api_token", GL.format("sentry-access-token"),
         lambda: hx(64), env="SENTRY_AUTH_TOKEN", field="sentry_auth_token", header=None,
         styles=["env", "export", "gha", "yaml"])
    saas("Datadog", "API key", "api_token", GL.format("datadog-access-token") + "; https://docs.datadoghq.com/account_management/api-app-keys/",
         lambda: hx(32), n=3, env="DD_API_KEY", field="api_key", header=("DD-API-KEY", "{}"),
         url="https://api.datadoghq.com/api/v1/validate",
         custom=[lambda s, p: f"# /etc/datadog-agent/datadog.yaml\napi_key: {s}\nsite: datadoghq.eu\nlogs_enabled: true"])
    saas("Datadog", "application key", "api_token", "https://docs.datadoghq.com/account_management/api-app-keys/",
         lambda: hx(40), env="DD_APP_KEY", field="app_key", header=("DD-APPLICATION-KEY", "{}"),
         url="https://api.datadoghq.com/api/v1/dashboard")
    saas("New Relic", "user API key NRAK-", "api_token", GL.format("new-relic-user-api-key"),
         lambda: "NRAK-" + rs(27, UPALNUM), env="NEW_RELIC_API_KEY", field="api_key", header=("API-Key", "{}"),
         url="https://api.newrelic.com/graphql")
    saas("New Relic", "insert key NRII-", "api_token", GL.format("new-relic-insert-key"),
         lambda: "NRII-" + rs(32, ALNUM + "-_"), env="NEW_RELIC_INSERT_KEY", field="insert_key",
         header=("X-Insert-Key", "{}"), url="https://insights-collector.newrelic.com/v1/accounts/3318822/events")
    saas("New Relic", "ingest license key ...NRAL", "api_token",
         "https://docs.newrelic.com/docs/apis/intro-apis/new-relic-api-keys/#license-key",
         lambda: hx(36) + "NRAL",
         env="NEW_RELIC_LICENSE_KEY", field="license_key", header=("Api-Key", "{}"),
         url="https://log-api.newrelic.com/log/v1",
         custom=[lambda s, p: f"common: &default_settings\n  license_key: '{s}'\n  app_name: checkout-api"])
    saas("New Relic", "browser key NRJS-", "api_token", GL.format("new-relic-browser-api-token"),
         lambda: "NRJS-" + hx(19), env="NEW_RELIC_BROWSER_KEY", field="license_key", header=None,
         styles=["js", "js_obj", "env", "json"])

    def glc():
        body = {"o": num(6), "n": "stack-" + num(6) + "-" + R.choice(["hm-write", "logs-read", "traces"]) + "-" + rs(6, LO),
                "k": rs(24, ALNUM), "m": {"r": R.choice(["prod-us-east-0", "prod-eu-west-2", "prod-ap-southeast-1"])}}
        return "glc_" + b64e(json.dumps(body, separators=(",", ":")).encode())
    saas("Grafana", "cloud access policy token glc_", "api_token", GL.format("grafana-cloud-api-token"), glc,
         env="GRAFANA_CLOUD_TOKEN", field="token", url="https://grafana.com/api/instances")
    saas("Grafana", "service account token glsa_", "api_token", GL.format("grafana-service-account-token"),
         lambda: "glsa_" + rs(32, ALNUM) + "_" + hx(8), n=3, env="GRAFANA_TOKEN", field="token",
         url="https://grafana.acme.io/api/dashboards/uid/k8s-overview")
    saas("Grafana", "legacy API key eyJrIjoi", "api_token", GL.format("grafana-api-key"),
         lambda: b64_alnum(lambda: json.dumps({"k": rs(32), "n": R.choice(["ci-dashboards", "terraform-provisioner", "alertmanager-sync"]),
                                              "id": R.randint(1, 40)}, separators=(",", ":")).encode()).rstrip("="),
         env="GRAFANA_API_KEY", field="api_key", url="https://grafana.acme.io/api/datasources")
    saas("Dynatrace", "API token dt0c01.", "api_token", GL.format("dynatrace-api-token"),
         lambda: "dt0c01." + rs(24, UPALNUM) + "." + rs(64, UPALNUM), env="DT_API_TOKEN", field="api_token",
         header=("Authorization", "Api-Token {}"), url="https://abc12345.live.dynatrace.com/api/v2/metrics")
    saas("Sumo Logic", "access key", "api_token", GL.format("sumologic-access-token"),
         lambda: rs(64, ALNUM), env="SUMO_ACCESS_KEY", field="access_key", header=None,
         custom=[lambda s, p: f"curl -u su{rs(12, ALNUM)}:{s} https://api.sumologic.com/api/v1/collectors"])
    saas("Splunk", "HTTP Event Collector token", "api_token",
         "https://docs.splunk.com/Documentation/Splunk/latest/Data/UsetheHTTPEventCollector",
         lambda: ruuid(), env="SPLUNK_HEC_TOKEN", field="token", header=("Authorization", "Splunk {}"),
         url="https://splunk.acme.io:8088/services/collector/event")
    saas("PagerDuty", "REST API key", "api_token", "https://developer.pagerduty.com/docs/authentication",
         lambda: R.choice(["u+" + rs(18, ALNUM + "-_"), rs(20, ALNUM + "-_+")]), env="PAGERDUTY_TOKEN",
         field="token", header=("Authorization", "Token token={}"), url="https://api.pagerduty.com/incidents")
    saas("Opsgenie", "API key", "api_token", "https://docs.opsgenie.com/docs/authentication",
         ruuid, env="OPSGENIE_API_KEY", field="api_key", header=("Authorization", "GenieKey {}"),
         url="https://api.opsgenie.com/v2/alerts")
    saas("LaunchDarkly", "API access token api-", "api_token", GL.format("launchdarkly-access-token"),
         lambda: "api-" + ruuid(), env="LD_API_KEY", field="api_key", header=("Authorization", "{}"),
         url="https://app.launchdarkly.com/api/v2/flags/default")
    saas("LaunchDarkly", "server-side SDK key sdk-", "api_token", "https://docs.launchdarkly.com/sdk/concepts/client-side-server-side#keys",
         lambda: "sdk-" + ruuid(), env="LAUNCHDARKLY_SDK_KEY", field="sdk_key", header=None,
         styles=["env", "python_kw", "go", "js", "yaml"])
    saas("Rollbar", "access token", "api_token", "https://docs.rollbar.com/docs/access-tokens",
         lambda: hx(32), env="ROLLBAR_ACCESS_TOKEN", field="access_token", header=("X-Rollbar-Access-Token", "{}"),
         url="https://api.rollbar.com/api/1/items/")
    saas("Bugsnag", "data access token", "api_token", "https://bugsnagapiv2.docs.apiary.io/#introduction/authentication",
         lambda: hx(32), env="BUGSNAG_AUTH_TOKEN", field="auth_token", header=("Authorization", "token {}"),
         url="https://api.bugsnag.com/user/organizations")
    saas("Honeybadger", "personal auth token", "api_token", "https://docs.honeybadger.io/api/",
         lambda: rs(20, ALNUM), env="HONEYBADGER_PERSONAL_AUTH_TOKEN", field="auth_token", header=None,
         custom=[lambda s, p: f"curl -u {s}: https://app.honeybadger.io/v2/projects"])

    # --- CI / code quality -------------------------------------------------------------------------
    saas("Codecov", "upload token", "api_token", GL.format("codecov-access-token"),
         ruuid, env="CODECOV_TOKEN", field="token", header=None,
         custom=[lambda s, p: f"- uses: codecov/codecov-action@v4\n  with:\n    token: {s}\n    files: coverage.xml"])
    saas("Snyk", "API token", "api_token", GL.format("snyk-api-token"), ruuid, env="SNYK_TOKEN", field="token",
         header=("Authorization", "token {}"), url="https://api.snyk.io/rest/self?version=2024-06-10",
         custom=[lambda s, p: f"snyk auth {s}"])
    saas("SonarQube", "user token squ_", "api_token", "https://docs.sonarsource.com/sonarqube/latest/user-guide/user-account/generating-and-using-tokens/",
         lambda: "squ_" + hx(40), env="SONAR_TOKEN", field="token", header=None,
         custom=[lambda s, p: f"mvn sonar:sonar -Dsonar.host.url=https://sonar.acme.io -Dsonar.token={s}",
                 lambda s, p: f"sonar.projectKey=acme_billing\nsonar.host.url=https://sonar.acme.io\nsonar.login={s}"])
    saas("SonarQube", "project analysis token sqp_", "api_token", "https://docs.sonarsource.com/sonarqube/latest/user-guide/user-account/generating-and-using-tokens/",
         lambda: "sqp_" + hx(40), env="SONAR_TOKEN", field="token", header=None, styles=["env", "gha", "properties"])
    saas("Sourcegraph", "access token sgp_", "api_token", GL.format("sourcegraph-access-token"),
         lambda: "sgp_" + hx(16) + "_" + hx(40), env="SRC_ACCESS_TOKEN", field="access_token",
         header=("Authorization", "token {}"), url="https://sourcegraph.com/.api/graphql")
    saas("Jenkins", "API token", "api_token", "https://www.jenkins.io/doc/book/system-administration/authenticating-scripted-clients/",
         lambda: "11" + hx(32), env="JENKINS_API_TOKEN", field="api_token", header=None,
         custom=[lambda s, p: f"curl -X POST -u deploy-bot:{s} https://jenkins.acme.io/job/release/buildWithParameters?TAG=v4.2.0"])
    saas("CircleCI", "personal API token CCIPAT_", "api_token", "public scanner rule CCIPAT_[A-Za-z0-9]{22}_[a-f0-9]{40}; https://circleci.com/docs/managing-api-tokens/",
         lambda: "CCIPAT_" + rs(22, ALNUM) + "_" + hx(40), env="CIRCLECI_TOKEN", field="token",
         header=("Circle-Token", "{}"), url="https://circleci.com/api/v2/me")
    saas("Travis CI", "API token", "api_token", GL.format("travisci-access-token"),
         lambda: rs(22, ALNUM), env="TRAVIS_API_TOKEN", field="travis_token", header=("Authorization", "token {}"),
         url="https://api.travis-ci.com/user")
    saas("Buildkite", "API access token bkua_", "api_token", "https://buildkite.com/docs/apis/managing-api-tokens",
         lambda: "bkua_" + hx(40), env="BUILDKITE_API_TOKEN", field="api_token",
         url="https://api.buildkite.com/v2/organizations/acme/pipelines")
    saas("Drone CI", "personal token", "api_token", GL.format("droneci-access-token"),
         lambda: rs(32, ALNUM), env="DRONE_TOKEN", field="droneci_token", header=("Authorization", "Bearer {}"),
         url="https://drone.acme.io/api/user")
    saas("Harness", "personal access token pat.", "api_token", GL.format("harness-api-key"),
         lambda: "pat." + rs(22, ALNUM + "-_") + "." + rs(24, ALNUM) + "." + rs(20, ALNUM), env="HARNESS_API_KEY",
         field="api_key", header=("x-api-key", "{}"), url="https://app.harness.io/ng/api/user/currentUser")
    saas("Octopus Deploy", "API key API-", "api_token", GL.format("octopus-deploy-api-key"),
         lambda: "API-" + rs(26, UPALNUM), env="OCTOPUS_API_KEY", field="api_key", header=("X-Octopus-ApiKey", "{}"),
         url="https://octopus.acme.io/api/projects")
    saas("OpenShift", "user token sha256~", "api_token", GL.format("openshift-user-token"),
         lambda: "sha256~" + rs(43, ALNUM + "-_"), env="OC_TOKEN", field="token", header=("Authorization", "Bearer {}"),
         url="https://api.ocp.acme.io:6443/apis/user.openshift.io/v1/users/~",
         custom=[lambda s, p: f"oc login --token={s} --server=https://api.ocp.acme.io:6443"])
    saas("Tailscale", "auth key tskey-auth-", "api_token", TH.format("tailscale") + " (tskey-<type>-<id>-<secret>)",
         lambda: "tskey-auth-k" + rs(10, ALNUM) + "CNTRL-" + rs(33, ALNUM), env="TS_AUTHKEY", field="authkey", header=None,
         custom=[lambda s, p: f"tailscale up --authkey={s} --advertise-tags=tag:ci"])
    saas("Tailscale", "API access token tskey-api-", "api_token", TH.format("tailscale"),
         lambda: "tskey-api-k" + rs(10, ALNUM) + "CNTRL-" + rs(33, ALNUM), env="TAILSCALE_API_KEY", field="api_key",
         url="https://api.tailscale.com/api/v2/tailnet/-/devices")
    saas("ngrok", "authtoken", "api_token", TH.format("ngrok"),
         lambda: "2" + rs(26, ALNUM) + "_" + str(R.randint(1, 9)) + rs(20, ALNUM), env="NGROK_AUTHTOKEN", field="authtoken",
         header=None, custom=[lambda s, p: f"version: \"2\"\nauthtoken: {s}\ntunnels:\n  web:\n    proto: http\n    addr: 3000",
                              lambda s, p: f"ngrok config add-authtoken {s}"])
    saas("Defined Networking", "API token dnkey-", "api_token", GL.format("defined-networking-api-token"),
         lambda: "dnkey-" + rs(26, UPALNUM) + "-" + rs(52, UPALNUM), env="DNKEY", field="dnkey",
         url="https://api.defined.net/v1/hosts")
    saas("Infracost", "API key ico-", "api_token", GL.format("infracost-api-token"),
         lambda: "ico-" + rs(32, ALNUM), env="INFRACOST_API_KEY", field="api_key", header=("X-Api-Key", "{}"),
         url="https://pricing.api.infracost.io/graphql")
    saas("Scalingo", "API token tk-us-", "api_token", GL.format("scalingo-api-token"),
         lambda: "tk-us-" + rs(48, ALNUM + "-_"), env="SCALINGO_API_TOKEN", field="api_token", header=None,
         styles=["env", "cli", "gha", "export"])
    saas("SettleMint", "personal access token sm_pat_", "api_token", GL.format("settlemint-personal-access-token"),
         lambda: "sm_pat_" + rs(16, ALNUM), env="SETTLEMINT_ACCESS_TOKEN", field="access_token",
         header=("x-auth-token", "{}"), url="https://console.settlemint.com/api/graphql")
    saas("MaxMind", "license key _mmk", "api_token", GL.format("maxmind-license-key"),
         lambda: rs(6, ALNUM) + "_" + rs(29, ALNUM) + "_mmk", env="MAXMIND_LICENSE_KEY", field="license_key", header=None,
         custom=[lambda s, p: f"AccountID 918273\nLicenseKey {s}\nEditionIDs GeoLite2-City GeoLite2-ASN"])
    saas("Frame.io", "developer token fio-u-", "api_token", GL.format("frameio-api-token"),
         lambda: "fio-u-" + rs(64, ALNUM + "-_"), env="FRAMEIO_TOKEN", field="token", url="https://api.frame.io/v2/me")
    saas("Beamer", "API key b_", "api_token", GL.format("beamer-api-token"),
         lambda: "b_" + rs(44, ALNUM + "-_"), env="BEAMER_API_KEY", field="beamer_api_key", header=("Beamer-Api-Key", "{}"),
         url="https://api.getbeamer.com/v0/posts")
    saas("Authress", "service client access key", "api_token", GL.format("authress-service-client-access-key"),
         lambda: "sc_" + rs(20, LOALNUM) + "." + rs(5, LOALNUM) + ".acc_" + rs(24, LOALNUM) + "." +
         rs(R.randint(60, 90), ALNUM + "+/"), env="AUTHRESS_ACCESS_KEY", field="access_key", header=None,
         styles=["env", "python_kw", "js", "json"])
    saas("ClickHouse Cloud", "API secret key 4b1d", "api_token", GL.format("clickhouse-cloud-api-secret-key"),
         lambda: "4b1d" + rs(38, ALNUM), env="CLICKHOUSE_API_SECRET", field="key_secret", header=None,
         custom=[lambda s, p: f"curl --user '{rs(20, ALNUM)}:{s}' https://api.clickhouse.cloud/v1/organizations"])
    saas("Adobe", "OAuth client secret p8e-", "oauth_secret", GL.format("adobe-client-secret"),
         lambda: "p8e-" + rs(32, ALNUM), env="ADOBE_CLIENT_SECRET", field="client_secret", header=None)
    saas("42 Intra", "client secret s-s4t2ud-", "oauth_secret", GL.format("intra42-client-secret"),
         lambda: "s-s4t2" + R.choice(["ud", "af"]) + "-" + hx(64), env="INTRA_CLIENT_SECRET", field="client_secret",
         header=None)


def build_saas2():
    # --- AI / ML ------------------------------------------------------------------------------
    def openai(kind):
        a, b = R.choice([(74, 74), (58, 58)])
        return f"sk-{kind}-" + rs(a, ALNUM + "-_") + "T3BlbkFJ" + rs(b, ALNUM + "-_")
    saas("OpenAI", "project API key sk-proj-", "api_token", GL.format("openai-api-key"), lambda: openai("proj"), n=3,
         env="OPENAI_API_KEY", field="api_key", url="https://api.openai.com/v1/chat/completions",
         custom=[lambda s, p: f'from openai import OpenAI\n\nclient = OpenAI(api_key="{s}")'])
    saas("OpenAI", "service account key sk-svcacct-", "api_token", GL.format("openai-api-key"), lambda: openai("svcacct"),
         env="OPENAI_API_KEY", field="api_key", url="https://api.openai.com/v1/models")
    saas("OpenAI", "admin key sk-admin-", "api_token", GL.format("openai-api-key"), lambda: openai("admin"),
         env="OPENAI_ADMIN_KEY", field="admin_key", url="https://api.openai.com/v1/organization/users")
    saas("OpenAI", "legacy user key sk-...T3BlbkFJ", "api_token", GL.format("openai-api-key"),
         lambda: "sk-" + rs(20) + "T3BlbkFJ" + rs(20), env="OPENAI_API_KEY", field="openai_api_key",
         url="https://api.openai.com/v1/completions")
    saas("Anthropic", "API key sk-ant-api03-", "api_token", GL.format("anthropic-api-key"),
         lambda: "sk-ant-api03-" + rs(93, ALNUM + "-_") + "AA", n=3, env="ANTHROPIC_API_KEY", field="api_key",
         header=("x-api-key", "{}"), url="https://api.anthropic.com/v1/messages",
         custom=[lambda s, p: f'import anthropic\n\nclient = anthropic.Anthropic(api_key="{s}")'])
    saas("Anthropic", "admin key sk-ant-admin01-", "api_token", GL.format("anthropic-admin-api-key"),
         lambda: "sk-ant-admin01-" + rs(93, ALNUM + "-_") + "AA", env="ANTHROPIC_ADMIN_KEY", field="admin_key",
         header=("x-api-key", "{}"), url="https://api.anthropic.com/v1/organizations/api_keys")
    saas("Hugging Face", "user access token hf_", "api_token", "https://huggingface.co/docs/hub/security-tokens; " +
         GL.format("huggingface-access-token"), lambda: "hf_" + rs(34, UP + LO), n=3, env="HF_TOKEN", field="token",
         url="https://huggingface.co/api/whoami-v2",
         custom=[lambda s, p: f"huggingface-cli login --token {s} --add-to-git-credential"])
    saas("Hugging Face", "organization API token api_org_", "api_token", GL.format("huggingface-organization-api-token"),
         lambda: "api_org_" + rs(34, UP + LO), env="HUGGINGFACE_ORG_TOKEN", field="token",
         url="https://huggingface.co/api/models")
    saas("Cohere", "API key", "api_token", GL.format("cohere-api-token"), lambda: rs(40), env="CO_API_KEY",
         field="api_key", url="https://api.cohere.com/v1/chat")
    saas("Replicate", "API token r8_", "api_token", "https://replicate.com/docs/reference/http#authentication",
         lambda: "r8_" + rs(37), env="REPLICATE_API_TOKEN", field="api_token", url="https://api.replicate.com/v1/predictions")
    saas("Groq", "API key gsk_", "api_token", "gitleaks cmd/generate/config/rules/groq.go",
         lambda: "gsk_" + rs(52), env="GROQ_API_KEY", field="api_key", url="https://api.groq.com/openai/v1/chat/completions")
    saas("Perplexity", "API key pplx-", "api_token", GL.format("perplexity-api-key"), lambda: "pplx-" + rs(48),
         env="PERPLEXITY_API_KEY", field="api_key", url="https://api.perplexity.ai/chat/completions")
    saas("Mistral AI", "API key", "api_token", "https://docs.mistral.ai/getting-started/quickstart/",
         lambda: rs(32), env="MISTRAL_API_KEY", field="api_key", url="https://api.mistral.ai/v1/chat/completions")
    saas("DeepSeek", "API key", "api_token", "https://api-docs.deepseek.com/", lambda: "sk-" + hx(32),
         env="DEEPSEEK_API_KEY", field="api_key", url="https://api.deepseek.com/chat/completions")
    saas("xAI", "API key xai-", "api_token", "https://docs.x.ai/docs/overview; public scanner rule xai-[A-Za-z0-9]{80}",
         lambda: "xai-" + rs(80), env="XAI_API_KEY", field="api_key", url="https://api.x.ai/v1/chat/completions")
    saas("OpenRouter", "API key sk-or-v1-", "api_token", "https://openrouter.ai/docs/api-reference/authentication",
         lambda: "sk-or-v1-" + hx(64), env="OPENROUTER_API_KEY", field="api_key",
         url="https://openrouter.ai/api/v1/chat/completions")
    saas("Together AI", "API key", "api_token", "https://docs.together.ai/",
         lambda: hx(64), env="TOGETHER_API_KEY", field="api_key", url="https://api.together.xyz/v1/models")
    saas("LangSmith", "API key lsv2_pt_", "api_token", "gitleaks cmd/generate/config/rules/langsmith.go",
         lambda: "lsv2_" + R.choice(["pt", "sk"]) + "_" + hx(32) + "_" + hx(10), env="LANGSMITH_API_KEY",
         field="api_key", header=("x-api-key", "{}"), url="https://api.smith.langchain.com/api/v1/sessions")
    saas("Pinecone", "API key pcsk_", "api_token", "https://docs.pinecone.io/guides/projects/manage-api-keys",
         lambda: "pcsk_" + rs(R.choice([5, 6]), ALNUM) + "_" + rs(63, ALNUM), env="PINECONE_API_KEY", field="api_key",
         header=("Api-Key", "{}"), url="https://api.pinecone.io/indexes")
    saas("Weights & Biases", "API key", "api_token", "https://docs.wandb.ai/guides/track/environment-variables",
         lambda: hx(40), env="WANDB_API_KEY", field="password", header=None,
         custom=[lambda s, p: f"machine api.wandb.ai\n  login user\n  password {s}"])
    saas("ElevenLabs", "API key sk_", "api_token", "https://elevenlabs.io/docs/api-reference/authentication",
         lambda: "sk_" + hx(48), env="ELEVENLABS_API_KEY", field="api_key", header=("xi-api-key", "{}"),
         url="https://api.elevenlabs.io/v1/voices")
    saas("AssemblyAI", "API key", "api_token", "https://www.assemblyai.com/docs/api-reference/overview#authorization",
         lambda: hx(32), env="ASSEMBLYAI_API_KEY", field="api_key", header=("Authorization", "{}"),
         url="https://api.assemblyai.com/v2/transcript")
    saas("Deepgram", "API key", "api_token", "https://developers.deepgram.com/reference/authentication",
         lambda: hx(40), env="DEEPGRAM_API_KEY", field="api_key", header=("Authorization", "Token {}"),
         url="https://api.deepgram.com/v1/listen")
    saas("Stability AI", "API key", "api_token", "https://platform.stability.ai/docs/getting-started/authentication",
         lambda: "sk-" + rs(48), env="STABILITY_API_KEY", field="api_key",
         url="https://api.stability.ai/v2beta/stable-image/generate/core")
    saas("Tavily", "API key tvly-", "api_token", "https://docs.tavily.com/documentation/api-reference/introduction",
         lambda: "tvly-" + R.choice(["", "dev-"]) + rs(32), env="TAVILY_API_KEY", field="api_key",
         url="https://api.tavily.com/search")
    saas("Firecrawl", "API key fc-", "api_token", "https://docs.firecrawl.dev/api-reference/introduction",
         lambda: "fc-" + hx(32), env="FIRECRAWL_API_KEY", field="api_key", url="https://api.firecrawl.dev/v1/scrape")
    saas("Google AI Studio", "Gemini API key", "api_token", "https://ai.google.dev/gemini-api/docs/api-key",
         lambda: "AIzaSy" + rs(33, ALNUM + "-_"), env="GEMINI_API_KEY", field="api_key", header=("x-goog-api-key", "{}"),
         url="https://generativelanguage.googleapis.com/v1beta/models/gemini-1.5-flash:generateContent",
         custom=[lambda s, p: f"curl 'https://generativelanguage.googleapis.com/v1beta/models?key={s}'"])

    # --- messaging / email / comms -----------------------------------------------------------
    SL = "https://api.slack.com/authentication/token-types; "
    saas("Slack", "bot token xoxb-", "api_token", SL + GL.format("slack-bot-token"),
         lambda: f"xoxb-{num(R.choice([11, 12, 13]))}-{num(R.choice([12, 13]))}-{rs(24)}", n=3,
         env="SLACK_BOT_TOKEN", field="token", url="https://slack.com/api/chat.postMessage",
         custom=[lambda s, p: f'from slack_sdk import WebClient\n\nclient = WebClient(token="{s}")'])
    saas("Slack", "user token xoxp-", "api_token", SL + GL.format("slack-user-token"),
         lambda: f"xoxp-{num(12)}-{num(12)}-{num(13)}-{hx(32)}", env="SLACK_USER_TOKEN", field="token",
         url="https://slack.com/api/users.list")
    saas("Slack", "app-level token xapp-", "api_token", SL + GL.format("slack-app-token"),
         lambda: f"xapp-1-A{rs(10, UPALNUM)}-{num(13)}-{hx(64)}", env="SLACK_APP_TOKEN", field="app_token",
         url="https://slack.com/api/apps.connections.open")
    saas("Slack", "configuration token xoxe.xoxp-", "api_token", SL + GL.format("slack-config-access-token"),
         lambda: "xoxe.xoxp-1-" + rs(164), env="SLACK_CONFIG_TOKEN", field="config_token",
         url="https://slack.com/api/apps.manifest.validate")
    saas("Slack", "configuration refresh token xoxe-", "oauth_token", SL + GL.format("slack-config-refresh-token"),
         lambda: "xoxe-1-" + rs(146), env="SLACK_CONFIG_REFRESH_TOKEN", field="refresh_token", header=None,
         custom=[lambda s, p: f"curl -d 'refresh_token={s}' https://slack.com/api/tooling.tokens.rotate"])
    saas("Slack", "legacy workspace token xoxa-2-", "api_token", GL.format("slack-legacy-workspace-token"),
         lambda: f"xoxa-2-{num(12)}-{num(12)}-{num(12)}-{hx(32)}", env="SLACK_WORKSPACE_TOKEN", field="token",
         url="https://slack.com/api/conversations.list")

    def discord_bot():
        uid = str(R.randint(10 ** 17 + 10 ** 16, 13 * 10 ** 17))
        return b64u(uid.encode()) + "." + rs(6, ALNUM + "-_") + "." + rs(R.choice([27, 38]), ALNUM + "-_")
    saas("Discord", "bot token", "api_token", "https://discord.com/developers/docs/reference#authentication; "
         "public scanner rule [A-Za-z0-9_-]{24}.[A-Za-z0-9_-]{6}.[A-Za-z0-9_-]{27,38}", discord_bot, n=3,
         env="DISCORD_TOKEN", field="token", header=("Authorization", "Bot {}"),
         url="https://discord.com/api/v10/users/@me",
         custom=[lambda s, p: f"import discord\n\nbot = discord.Client(intents=discord.Intents.default())\nbot.run('{s}')"])
    saas("Discord", "OAuth client secret", "oauth_secret", GL.format("discord-client-secret"),
         lambda: rs(32, ALNUM + "-_"), env="DISCORD_CLIENT_SECRET", field="discord_client_secret", header=None,
         styles=["env", "yaml", "json", "toml"])
    saas("Telegram", "bot token", "api_token", "https://core.telegram.org/bots/api#authorizing-your-bot; " +
         GL.format("telegram-bot-api-token"),
         lambda: f"{R.randint(10 ** 8, 79 * 10 ** 8)}:AA{rs(33, ALNUM + '-_')}", n=3, env="TELEGRAM_BOT_TOKEN",
         field="bot_token", header=None,
         custom=[lambda s, p: f"curl -s https://api.telegram.org/bot{s}/sendMessage -d chat_id=-100172635 -d text=deployed",
                 lambda s, p: f"{stamp()} INFO  httpx: HTTP Request: POST https://api.telegram.org/bot{s}/getUpdates \"HTTP/1.1 200 OK\""])
    saas("Twilio", "auth token", "api_token", "https://www.twilio.com/docs/iam/credentials/api; " + TH.format("twilio"),
         lambda: hx(32), n=3, env="TWILIO_AUTH_TOKEN", field="auth_token", header=None,
         custom=[lambda s, p: f"curl -X POST https://api.twilio.com/2010-04-01/Accounts/AC{hx(32)}/Messages.json -u AC{hx(32)}:{s} "
                 "--data-urlencode 'To=+15558675310' --data-urlencode 'Body=Your code is 481-229'",
                 lambda s, p: f"TWILIO_ACCOUNT_SID=AC{hx(32)}\nTWILIO_AUTH_TOKEN={s}\nTWILIO_FROM=+15005550006"])
    saas("Twilio", "API key secret", "api_token", "https://www.twilio.com/docs/iam/api-keys; " + GL.format("twilio-api-key"),
         lambda: rs(32), env="TWILIO_API_SECRET", field="api_secret", header=None,
         custom=[lambda s, p: f"client = Client('SK{hx(32)}', '{s}', 'AC{hx(32)}')"])
    saas("SendGrid", "API key SG.", "api_token", GL.format("sendgrid-api-token") +
         "; https://www.twilio.com/docs/sendgrid/ui/account-and-settings/api-keys",
         lambda: "SG." + rs(22, ALNUM + "-_") + "." + rs(43, ALNUM + "-_"), n=3, env="SENDGRID_API_KEY",
         field="api_key", url="https://api.sendgrid.com/v3/mail/send")
    saas("Mailgun", "private API key key-", "api_token", GL.format("mailgun-private-api-token"),
         lambda: "key-" + hx(32), env="MAILGUN_API_KEY", field="api_key", header=None,
         custom=[lambda s, p: f"curl -s --user 'api:{s}' https://api.mailgun.net/v3/mg.acme.io/messages -F from='noreply@acme.io' -F to='ops@acme.io' -F subject='hi' -F text='test'"])
    saas("Mailgun", "private API key (2023 format)", "api_token", TH.format("mailgun"),
         lambda: hx(32) + "-" + hx(8) + "-" + hx(8), env="MAILGUN_API_KEY", field="mailgun_api_key", header=None,
         styles=["env", "yaml", "python", "ruby", "php"])
    saas("Mailgun", "webhook signing key", "signing_secret", GL.format("mailgun-signing-key"),
         lambda: hx(32) + "-" + hx(8) + "-" + hx(8), env="MAILGUN_WEBHOOK_SIGNING_KEY", field="mailgun_signing_key",
         header=None, styles=["env", "yaml", "json"])
    saas("Mailchimp", "API key -usNN", "api_token", GL.format("mailchimp-api-key"),
         lambda: hx(32) + "-us" + str(R.randint(1, 21)), n=3, env="MAILCHIMP_API_KEY", field="api_key",
         header=None, custom=[lambda s, p: f"curl -sS --user 'anystring:{s}' 'https://{s.split('-')[1]}.api.mailchimp.com/3.0/lists'"])
    saas("Mailchimp Transactional", "Mandrill API key md-", "api_token", "https://mailchimp.com/developer/transactional/guides/quick-start/",
         lambda: "md-" + rs(22, ALNUM + "-_"), env="MANDRILL_API_KEY", field="key", header=None,
         styles=["env", "json", "php", "python"])
    saas("Brevo", "API key xkeysib-", "api_token", GL.format("sendinblue-api-token"),
         lambda: "xkeysib-" + hx(64) + "-" + rs(16), env="BREVO_API_KEY", field="api_key", header=("api-key", "{}"),
         url="https://api.brevo.com/v3/smtp/email")
    saas("Brevo", "SMTP key xsmtpsib-", "api_token", "https://developers.brevo.com/ (SMTP keys are shown as xsmtpsib-<64 hex>-<16>)",
         lambda: "xsmtpsib-" + hx(64) + "-" + rs(16), env="SMTP_PASSWORD", field="smtp_password", header=None,
         styles=["env", "yaml", "ini", "properties"])
    saas("Postmark", "server API token", "api_token", "https://postmarkapp.com/developer/api/overview#authentication",
         ruuid, env="POSTMARK_SERVER_TOKEN", field="server_token", header=("X-Postmark-Server-Token", "{}"),
         url="https://api.postmarkapp.com/email")
    saas("SparkPost", "API key", "api_token", "https://developers.sparkpost.com/api/#header-authorization",
         lambda: hx(40), env="SPARKPOST_API_KEY", field="api_key", header=("Authorization", "{}"),
         url="https://api.sparkpost.com/api/v1/transmissions")
    saas("Resend", "API key re_", "api_token", "https://resend.com/docs/api-reference/introduction; public scanner rule re_[A-Za-z0-9]{8}_[A-Za-z0-9]{24}",
         lambda: "re_" + rs(8) + "_" + rs(24), env="RESEND_API_KEY", field="api_key", url="https://api.resend.com/emails")
    saas("MessageBird", "API access key", "api_token", GL.format("messagebird-api-token"),
         lambda: rs(25), env="MESSAGEBIRD_API_KEY", field="messagebird_api_key", header=("Authorization", "AccessKey {}"),
         url="https://rest.messagebird.com/messages")
    saas("Vonage", "API secret", "api_token", "https://developer.vonage.com/en/getting-started/concepts/authentication",
         lambda: rs(16), env="VONAGE_API_SECRET", field="api_secret", header=None,
         custom=[lambda s, p: f"curl -X POST https://rest.nexmo.com/sms/json -d api_key={hx(8)} -d api_secret={s} -d to=447700900000 -d from=ACME -d text=hello"])
    saas("Plivo", "auth token", "api_token", "https://www.plivo.com/docs/sms/api/overview#authentication",
         lambda: rs(40), env="PLIVO_AUTH_TOKEN", field="auth_token", header=None,
         custom=[lambda s, p: f"client = plivo.RestClient(auth_id='MA{rs(18, UPALNUM)}', auth_token='{s}')"])
    saas("Telnyx", "API key v2 KEY", "api_token", "https://developers.telnyx.com/docs/overview/authentication",
         lambda: "KEY" + hx(32, True) + "_" + rs(22), env="TELNYX_API_KEY", field="api_key",
         url="https://api.telnyx.com/v2/messages")
    saas("Pusher", "app secret", "api_token", "https://pusher.com/docs/channels/server_api/http-api/#authentication",
         lambda: hx(20), env="PUSHER_APP_SECRET", field="secret", header=None,
         custom=[lambda s, p: f"pusher = Pusher(app_id='{num(7)}', key='{hx(20)}', secret='{s}', cluster='eu', ssl=True)"])
    saas("Ably", "API key", "api_token", "https://ably.com/docs/auth/basic",
         lambda: rs(6) + "." + rs(6) + ":" + rs(43, ALNUM + "-_"), env="ABLY_API_KEY", field="key", header=None,
         custom=[lambda s, p: f"const ably = new Ably.Realtime({{ key: '{s}' }});"])
    saas("Sendbird", "API token", "api_token", GL.format("sendbird-access-token"), lambda: hx(40),
         env="SENDBIRD_API_TOKEN", field="sendbird_api_token", header=("Api-Token", "{}"),
         url="https://api-0A1B2C3D.sendbird.com/v3/users")
    saas("Intercom", "access token (base64 tok:...)", "api_token", GL.format("intercom-api-key"),
         lambda: b64e(("tok:" + ruuid().replace("-", "_") + ":1:0").encode()), env="INTERCOM_ACCESS_TOKEN",
         field="access_token", url="https://api.intercom.io/me")
    saas("Zendesk", "API token", "api_token", "https://developer.zendesk.com/api-reference/introduction/security-and-auth/",
         lambda: rs(40), env="ZENDESK_API_TOKEN", field="token", header=None,
         custom=[lambda s, p: f"curl https://acme.zendesk.com/api/v2/tickets.json -u support-bot@acme.io/token:{s}"])
    saas("Freshdesk", "API key", "api_token", "https://developers.freshdesk.com/api/#authentication",
         lambda: rs(20), env="FRESHDESK_API_KEY", field="api_key", header=None,
         custom=[lambda s, p: f"curl -v -u {s}:X -H 'Content-Type: application/json' https://acme.freshdesk.com/api/v2/tickets"])

    # --- payments / commerce -----------------------------------------------------------------
    ST = "https://docs.stripe.com/keys; " + GL.format("stripe-access-token")
    saas("Stripe", "live secret key sk_live_", "api_token", ST,
         lambda: "sk_live_" + R.choice([rs(24), "51" + rs(97)]), n=3, env="STRIPE_SECRET_KEY", field="secret_key",
         url="https://api.stripe.com/v1/charges",
         custom=[lambda s, p: f"curl https://api.stripe.com/v1/customers -u {s}: -d email=jenny@example.com",
                 lambda s, p: f"Stripe.api_key = '{s}'"])
    saas("Stripe", "restricted key rk_live_", "api_token", ST, lambda: "rk_live_" + R.choice([rs(24), "51" + rs(97)]),
         env="STRIPE_RESTRICTED_KEY", field="restricted_key", url="https://api.stripe.com/v1/balance")
    saas("Stripe", "webhook signing secret whsec_", "signing_secret", "https://docs.stripe.com/webhooks#verify-events",
         lambda: "whsec_" + rs(32), n=2, env="STRIPE_WEBHOOK_SECRET", field="webhook_secret", header=None,
         custom=[lambda s, p: f"event = stripe.Webhook.construct_event(payload, sig_header, '{s}')",
                 lambda s, p: f"> Ready! Your webhook signing secret is {s} (^C to quit)"])
    saas("Braintree", "access token access_token$production$", "api_token",
         "gitleaks cmd/generate/config/rules/braintree.go; https://developer.paypal.com/braintree/docs/guides/authentication/",
         lambda: "access_token$production$" + rs(16, LOALNUM) + "$" + hx(32), n=3, env="BRAINTREE_ACCESS_TOKEN",
         field="access_token", header=None,
         custom=[lambda s, p: f"gateway = braintree.BraintreeGateway(access_token=\"{s}\")"])
    saas("Braintree", "tokenization key production_", "api_token", "gitleaks cmd/generate/config/rules/braintree.go",
         lambda: "production_" + rs(8, LOALNUM) + "_" + rs(16, LOALNUM), env="BRAINTREE_TOKENIZATION_KEY",
         field="authorization", header=None, styles=["js", "js_obj", "env"])
    saas("PayPal", "REST client secret", "oauth_secret", "https://developer.paypal.com/api/rest/authentication/",
         lambda: "E" + rs(79, ALNUM + "-_"), env="PAYPAL_CLIENT_SECRET", field="client_secret", header=None,
         custom=[lambda s, p: f"curl -v -X POST https://api-m.paypal.com/v1/oauth2/token -u \"A{rs(79, ALNUM + '-_')}:{s}\" -d grant_type=client_credentials"])
    saas("Square", "access token EAAA", "api_token", GL.format("square-access-token") + "; https://developer.squareup.com/docs/build-basics/access-tokens",
         lambda: "EAAA" + rs(60, ALNUM + "-_"), n=3, env="SQUARE_ACCESS_TOKEN", field="access_token",
         url="https://connect.squareup.com/v2/locations")
    saas("Square", "OAuth application secret sq0csp-", "oauth_secret", "https://developer.squareup.com/docs/oauth-api/overview; trufflehog pkg/detectors/squareapp",
         lambda: "sq0csp-" + rs(43, ALNUM + "-_"), env="SQUARE_APPLICATION_SECRET", field="application_secret",
         header=None, styles=["env", "yaml", "json", "ruby"])
    saas("Square", "legacy access token sq0atp-", "api_token", GL.format("square-access-token"),
         lambda: "sq0atp-" + rs(22, ALNUM + "-_"), env="SQUARE_TOKEN", field="access_token",
         url="https://connect.squareup.com/v1/me")

    def adyen():
        return "AQE" + R.choice(["yhmfx", "whmfx", "rhmfx"]) + b64e(rb(66)).rstrip("=") + "=-" + b64e(rb(32)) + "-" + \
            rs(16, ALNUM + "%@]{}()<>#*")
    saas("Adyen", "API key AQE", "api_token", "https://docs.adyen.com/development-resources/api-credentials/; "
         "gitleaks cmd/generate/config/rules/adyen.go", adyen, env="ADYEN_API_KEY", field="api_key",
         header=("X-API-Key", "{}"), url="https://checkout-test.adyen.com/v71/payments")
    saas("Adyen", "client key live_", "api_token", "gitleaks cmd/generate/config/rules/adyen.go (adyen-client-key)",
         lambda: "live_" + rs(32, UPALNUM), env="ADYEN_CLIENT_KEY", field="client_key", header=None,
         styles=["js_obj", "env", "json"])
    saas("Coinbase", "legacy API secret", "api_token", GL.format("coinbase-access-token"),
         lambda: rs(32), env="COINBASE_API_SECRET", field="coinbase_api_secret", header=None,
         custom=[lambda s, p: f"client = Client(api_key='{rs(16)}', api_secret='{s}')"])
    saas("Plaid", "access token access-production-", "api_token", GL.format("plaid-api-token"),
         lambda: "access-" + R.choice(["production", "development"]) + "-" + ruuid(), env="PLAID_ACCESS_TOKEN",
         field="plaid_access_token", header=None,
         custom=[lambda s, p: json.dumps({"client_id": rs(24, HEX), "secret": rs(30, HEX), "access_token": s})])
    saas("Plaid", "API secret", "api_token", GL.format("plaid-secret-key"), lambda: hx(30), env="PLAID_SECRET",
         field="plaid_secret", header=None, styles=["env", "yaml", "python"])
    saas("Razorpay", "key secret", "api_token", "https://razorpay.com/docs/api/authentication/",
         lambda: rs(24), env="RAZORPAY_KEY_SECRET", field="key_secret", header=None,
         custom=[lambda s, p: f"curl -u rzp_live_{rs(14)}:{s} https://api.razorpay.com/v1/payments"])
    saas("Paystack", "secret key sk_live_", "api_token", "https://paystack.com/docs/api/authentication/",
         lambda: "sk_live_" + hx(40), env="PAYSTACK_SECRET_KEY", field="secret_key",
         url="https://api.paystack.co/transaction/initialize")
    saas("Flutterwave", "secret key FLWSECK-", "api_token", GL.format("flutterwave-secret-key"),
         lambda: "FLWSECK-" + rs(32, "abcdefgh0123456789") + "-X", env="FLW_SECRET_KEY", field="secret_key",
         url="https://api.flutterwave.com/v3/transactions")
    saas("Mollie", "live API key live_", "api_token", "https://docs.mollie.com/reference/authentication",
         lambda: "live_" + rs(30), env="MOLLIE_API_KEY", field="api_key", url="https://api.mollie.com/v2/payments")
    saas("GoCardless", "live access token live_", "api_token", GL.format("gocardless-api-token"),
         lambda: "live_" + rs(40, ALNUM + "-_"), env="GOCARDLESS_ACCESS_TOKEN", field="gocardless_access_token",
         url="https://api.gocardless.com/mandates")
    saas("Shopify", "Admin API access token shpat_", "api_token", GL.format("shopify-access-token"),
         lambda: "shpat_" + hx(32), n=3, env="SHOPIFY_ACCESS_TOKEN", field="access_token",
         header=("X-Shopify-Access-Token", "{}"), url="https://acme-store.myshopify.com/admin/api/2024-04/products.json")
    saas("Shopify", "app shared secret shpss_", "oauth_secret", GL.format("shopify-shared-secret"),
         lambda: "shpss_" + hx(32), env="SHOPIFY_API_SECRET", field="api_secret", header=None,
         styles=["env", "toml", "json"])
    saas("Shopify", "custom app access token shpca_", "api_token", GL.format("shopify-custom-access-token"),
         lambda: "shpca_" + hx(32), env="SHOPIFY_TOKEN", field="access_token", header=("X-Shopify-Access-Token", "{}"),
         url="https://acme-store.myshopify.com/admin/api/2024-04/orders.json")
    saas("Shopify", "private app password shppa_", "api_token", GL.format("shopify-private-app-access-token"),
         lambda: "shppa_" + hx(32), env="SHOPIFY_PASSWORD", field="password", header=None,
         custom=[lambda s, p: f"https://{hx(32)}:{s}@acme-store.myshopify.com/admin/api/2023-10/shop.json"])
    saas("WooCommerce", "REST API consumer secret cs_", "api_token", "https://woocommerce.github.io/woocommerce-rest-api-docs/#authentication",
         lambda: "cs_" + hx(40), env="WC_CONSUMER_SECRET", field="consumer_secret", header=None,
         custom=[lambda s, p: f"curl https://shop.acme.io/wp-json/wc/v3/orders -u ck_{hx(40)}:{s}"])
    saas("Lob", "live API key live_", "api_token", GL.format("lob-api-key"), lambda: "live_" + hx(35),
         env="LOB_API_KEY", field="lob_api_key", header=None,
         custom=[lambda s, p: f"curl https://api.lob.com/v1/addresses -u {s}:"])
    saas("Shippo", "live API token shippo_live_", "api_token", GL.format("shippo-api-token"),
         lambda: "shippo_live_" + hx(40), env="SHIPPO_API_TOKEN", field="api_token",
         header=("Authorization", "ShippoToken {}"), url="https://api.goshippo.com/shipments/")
    saas("EasyPost", "production API key EZAK", "api_token", GL.format("easypost-api-token"),
         lambda: "EZAK" + rs(54, LOALNUM), env="EASYPOST_API_KEY", field="api_key", header=None,
         custom=[lambda s, p: f"curl -X GET https://api.easypost.com/v2/shipments -u \"{s}:\""])
    saas("Duffel", "live access token duffel_live_", "api_token", GL.format("duffel-api-token"),
         lambda: "duffel_live_" + rs(43, ALNUM + "-_"), env="DUFFEL_ACCESS_TOKEN", field="access_token",
         url="https://api.duffel.com/air/offer_requests")
    saas("Chargebee", "live API key live_", "api_token", "https://apidocs.chargebee.com/docs/api/auth",
         lambda: "live_" + rs(32, ALNUM), env="CHARGEBEE_API_KEY", field="chargebee_api_key", header=None,
         custom=[lambda s, p: f"curl https://acme.chargebee.com/api/v2/subscriptions -u {s}:"])


def build_saas3():
    # --- productivity / collaboration -------------------------------------------------------------
    saas("Notion", "internal integration secret secret_", "api_token", "https://developers.notion.com/docs/authorization",
         lambda: "secret_" + rs(43), env="NOTION_TOKEN", field="auth", url="https://api.notion.com/v1/databases/query")
    saas("Notion", "integration token ntn_", "api_token", GL.format("notion-api-token"),
         lambda: "ntn_" + rs(11, DG) + rs(35), n=3, env="NOTION_API_KEY", field="auth",
         url="https://api.notion.com/v1/search",
         custom=[lambda s, p: f'const notion = new Client({{ auth: "{s}" }});'])
    saas("Linear", "personal API key lin_api_", "api_token", GL.format("linear-api-key"),
         lambda: "lin_api_" + rs(40), n=3, env="LINEAR_API_KEY", field="api_key", header=("Authorization", "{}"),
         url="https://api.linear.app/graphql")
    saas("Asana", "personal access token", "api_token", "https://developers.asana.com/docs/personal-access-token",
         lambda: R.choice(["1/", "2/"]) + num(16) + R.choice(["", "/" + num(16)]) + ":" + hx(32), env="ASANA_PAT",
         field="access_token", url="https://app.asana.com/api/1.0/users/me")
    saas("ClickUp", "personal API token pk_", "api_token", "https://clickup.com/api/developer-portal/authentication/",
         lambda: "pk_" + num(R.choice([7, 8, 9])) + "_" + rs(32, UPALNUM), env="CLICKUP_API_TOKEN", field="api_token",
         header=("Authorization", "{}"), url="https://api.clickup.com/api/v2/team")
    saas("Airtable", "personal access token pat", "api_token", "https://airtable.com/developers/web/guides/personal-access-tokens",
         lambda: "pat" + rs(14) + "." + hx(64), n=3, env="AIRTABLE_API_KEY", field="api_key",
         url="https://api.airtable.com/v0/meta/bases")
    saas("Airtable", "legacy API key key", "api_token", GL.format("airtable-api-key"), lambda: "key" + rs(14),
         env="AIRTABLE_API_KEY", field="airtable_api_key", url="https://api.airtable.com/v0/appXyZ123/Table%201")
    saas("Figma", "personal access token figd_", "api_token", "https://www.figma.com/developers/api#access-tokens",
         lambda: "figd_" + rs(40, ALNUM + "-_"), env="FIGMA_TOKEN", field="token", header=("X-Figma-Token", "{}"),
         url="https://api.figma.com/v1/me")
    saas("Typeform", "personal access token tfp_", "api_token", GL.format("typeform-api-token"),
         lambda: "tfp_" + rs(59, ALNUM + "-_"), env="TYPEFORM_TOKEN", field="typeform_token",
         url="https://api.typeform.com/forms")
    saas("Trello", "API token ATTA", "api_token", "https://developer.atlassian.com/cloud/trello/guides/rest-api/authorization/",
         lambda: "ATTA" + hx(64) + hx(8, True), env="TRELLO_TOKEN", field="token", header=None,
         custom=[lambda s, p: f"curl 'https://api.trello.com/1/members/me/boards?key={hx(32)}&token={s}'"])

    def monday():
        return jwt({"alg": "HS256"}, {"tid": R.randint(10 ** 8, 10 ** 9), "aai": R.randint(10, 99),
                                      "uid": R.randint(10 ** 7, 10 ** 8), "iad": "2024-0%d-1%dT08:12:44.000Z" % (R.randint(1, 9), R.randint(0, 9)),
                                      "per": "me:write", "actid": R.randint(10 ** 6, 10 ** 7), "rgn": "use1"}, 32)
    saas("monday.com", "API token (JWT)", "api_token", "https://developer.monday.com/api-reference/docs/authentication",
         monday, env="MONDAY_API_TOKEN", field="api_token", header=("Authorization", "{}"),
         url="https://api.monday.com/v2")
    saas("Contentful", "content management token CFPAT-", "api_token", "https://www.contentful.com/developers/docs/references/authentication/",
         lambda: "CFPAT-" + rs(43, ALNUM + "-_"), env="CONTENTFUL_MANAGEMENT_TOKEN", field="management_token",
         url="https://api.contentful.com/spaces")
    saas("Contentful", "delivery API token", "api_token", GL.format("contentful-delivery-api-token"),
         lambda: rs(43, ALNUM + "-_"), env="CONTENTFUL_DELIVERY_TOKEN", field="contentful_delivery_token",
         header=None, styles=["env", "json", "js"])
    saas("HubSpot", "private app token pat-na1-", "api_token", "https://developers.hubspot.com/docs/api/private-apps",
         lambda: "pat-" + R.choice(["na1", "eu1"]) + "-" + ruuid(), n=3, env="HUBSPOT_ACCESS_TOKEN", field="access_token",
         url="https://api.hubapi.com/crm/v3/objects/contacts")
    saas("HubSpot", "legacy API key", "api_token", GL.format("hubspot-api-key"), lambda: ruuid().upper(),
         env="HUBSPOT_API_KEY", field="hubspot_api_key", header=None,
         custom=[lambda s, p: f"https://api.hubapi.com/contacts/v1/lists/all/contacts/all?hapikey={s}"])
    saas("Salesforce", "OAuth access token 00D...!", "oauth_token", "https://help.salesforce.com/s/articleView?id=sf.remoteaccess_access_tokens.htm",
         lambda: "00D" + rs(12) + "!" + "AQ" + rs(1) + "AQ" + rs(92, ALNUM + "._"), n=2, env="SF_ACCESS_TOKEN",
         field="access_token", url="https://acme.my.salesforce.com/services/data/v60.0/sobjects/Account")
    saas("Salesforce", "connected app consumer secret", "oauth_secret", TH.format("salesforce"),
         lambda: hx(64, True), env="SF_CONSUMER_SECRET", field="consumer_secret", header=None,
         styles=["env", "properties", "yaml"])
    saas("Pipedrive", "API token", "api_token", "https://pipedrive.readme.io/docs/how-to-find-the-api-token",
         lambda: hx(40), env="PIPEDRIVE_API_TOKEN", field="api_token", header=None,
         custom=[lambda s, p: f"GET https://acme.pipedrive.com/api/v1/deals?api_token={s}"])
    saas("Dropbox", "short-lived access token sl.", "oauth_token", GL.format("dropbox-short-lived-api-token"),
         lambda: "sl." + R.choice(["", "u."]) + rs(135, ALNUM + "-_"), n=3, env="DROPBOX_ACCESS_TOKEN",
         field="dropbox_access_token", url="https://api.dropboxapi.com/2/files/list_folder")
    saas("Dropbox", "long-lived access token", "oauth_token", GL.format("dropbox-long-lived-api-token"),
         lambda: rs(11) + "AAAAAAAAAA" + rs(43, ALNUM + "-_"), env="DROPBOX_TOKEN", field="dropbox_token",
         header=None, styles=["env", "python_kw", "yaml"])
    saas("Box", "client secret", "oauth_secret", "https://developer.box.com/guides/authentication/client-credentials/",
         lambda: rs(32), env="BOX_CLIENT_SECRET", field="client_secret", header=None,
         custom=[lambda s, p: json.dumps({"boxAppSettings": {"clientID": rs(32, LOALNUM), "clientSecret": s,
                                                             "appAuth": {"publicKeyID": rs(8, LOALNUM)}},
                                          "enterpriseID": num(9)}, indent=2)])
    saas("Box", "developer token", "oauth_token", "https://developer.box.com/guides/authentication/tokens/developer-tokens/",
         lambda: rs(32), env="BOX_DEVELOPER_TOKEN", field="developer_token", url="https://api.box.com/2.0/users/me")

    def mapbox(prefix):
        inner = {"u": R.choice(["acme-maps", "fleetview", "geo-team"]), "a": "cl" + rs(23, LOALNUM)}
        return prefix + "." + b64u(json.dumps(inner, separators=(",", ":")).encode()) + "." + rs(22, ALNUM + "-_")
    saas("Mapbox", "secret token sk.", "api_token", "https://docs.mapbox.com/accounts/guides/tokens/; " + GL.format("mapbox-api-token"),
         lambda: mapbox("sk"), env="MAPBOX_SECRET_TOKEN", field="access_token", header=None,
         custom=[lambda s, p: f"curl 'https://api.mapbox.com/tokens/v2?access_token={s}'",
                 lambda s, p: f"machine api.mapbox.com\n  login mapbox\n  password {s}"])
    saas("Mapbox", "public token pk.", "api_token", GL.format("mapbox-api-token"), lambda: mapbox("pk"),
         env="MAPBOX_ACCESS_TOKEN", field="mapbox_access_token", header=None, styles=["js", "js_obj", "env"])
    saas("Algolia", "admin API key", "api_token", GL.format("algolia-api-key"), lambda: hx(32), env="ALGOLIA_ADMIN_KEY",
         field="algolia_admin_key", header=("X-Algolia-API-Key", "{}"),
         url="https://" + rs(10, UPALNUM) + ".algolia.net/1/indexes")
    saas("Elastic Cloud", "API key (base64 id:key)", "api_token", "https://www.elastic.co/guide/en/elasticsearch/reference/current/security-api-create-api-key.html",
         lambda: b64e((rs(20, ALNUM + "-_") + ":" + rs(22, ALNUM + "-_")).encode()), env="ELASTIC_API_KEY",
         field="api_key", header=("Authorization", "ApiKey {}"),
         url="https://acme.es.us-central1.gcp.cloud.es.io:443/_search")
    saas("InfluxDB", "API token", "api_token", "https://docs.influxdata.com/influxdb/v2/admin/tokens/",
         lambda: b64u(rb(64)) + "==", env="INFLUX_TOKEN", field="token", header=("Authorization", "Token {}"),
         url="https://us-east-1-1.aws.cloud2.influxdata.com/api/v2/buckets")
    saas("Twitch", "OAuth access token", "oauth_token", GL.format("twitch-api-token"), lambda: rs(30, LOALNUM),
         env="TWITCH_ACCESS_TOKEN", field="twitch_token", url="https://api.twitch.tv/helix/users")
    saas("Spotify", "client secret", "oauth_secret", "https://developer.spotify.com/documentation/web-api/concepts/apps",
         lambda: hx(32), env="SPOTIFY_CLIENT_SECRET", field="client_secret", header=None,
         custom=[lambda s, p: f"curl -X POST https://accounts.spotify.com/api/token -d grant_type=client_credentials -d client_id={hx(32)} -d client_secret={s}"])
    saas("Meta / Facebook", "user or page access token EAA", "oauth_token", GL.format("facebook-page-access-token"),
         lambda: "EAA" + R.choice("BCGMIJ") + rs(R.randint(150, 220)), n=3, env="FB_ACCESS_TOKEN",
         field="access_token", header=None,
         custom=[lambda s, p: f"curl -G https://graph.facebook.com/v19.0/me/accounts -d access_token={s}"])
    saas("Meta / Facebook", "app secret", "oauth_secret", GL.format("facebook-secret"), lambda: hx(32),
         env="FACEBOOK_APP_SECRET", field="facebook_app_secret", header=None, styles=["env", "yaml", "php", "json"])
    saas("Instagram", "Basic Display access token IGQV", "oauth_token", "https://developers.facebook.com/docs/instagram-basic-display-api/overview#instagram-user-access-tokens",
         lambda: "IGQVJ" + rs(R.randint(150, 190), ALNUM + "-_"), env="INSTAGRAM_ACCESS_TOKEN", field="access_token",
         header=None, custom=[lambda s, p: f"https://graph.instagram.com/me/media?fields=id,caption&access_token={s}"])

    def tw_bearer():  # 22 x "A", app id, padding, then URL-encoded base64 (80-100 chars after the A run)
        while True:
            inner = urllib.parse.quote(b64e(rb(27)), safe="")
            tail = rs(7, ALNUM) + "AAAAA" + inner + rs(40)
            if 80 <= len(tail) <= 100:
                return "A" * 22 + tail
    saas("X / Twitter", "app bearer token", "api_token", GL.format("twitter-bearer-token"), tw_bearer, n=3,
         env="TWITTER_BEARER_TOKEN", field="bearer_token", url="https://api.twitter.com/2/tweets/search/recent?query=acme")
    saas("X / Twitter", "API secret key", "oauth_secret", GL.format("twitter-api-secret"), lambda: rs(50),
         env="TWITTER_API_SECRET", field="twitter_api_secret", header=None, styles=["env", "yaml", "python", "json"])
    saas("X / Twitter", "access token secret", "oauth_secret", GL.format("twitter-access-secret"), lambda: rs(45),
         env="TWITTER_ACCESS_TOKEN_SECRET", field="twitter_access_secret", header=None,
         custom=[lambda s, p: f"auth = tweepy.OAuth1UserHandler('{rs(25)}', '{rs(50)}', '{num(19)}-{rs(31)}', '{s}')"])
    saas("LinkedIn", "client secret", "oauth_secret", GL.format("linkedin-client-secret"), lambda: rs(16),
         env="LINKEDIN_CLIENT_SECRET", field="linkedin_client_secret", header=None,
         custom=[lambda s, p: f"grant_type=authorization_code&code={rs(60, ALNUM + '-_')}&client_id={rs(14, LOALNUM)}&client_secret={s}&redirect_uri=https%3A%2F%2Fapp.acme.io%2Fcallback"])
    saas("Etsy", "API keystring", "api_token", GL.format("etsy-access-token"), lambda: rs(24, LOALNUM),
         env="ETSY_API_KEY", field="etsy_api_key", header=("x-api-key", "{}"),
         url="https://openapi.etsy.com/v3/application/shops")
    saas("Bitly", "generic access token", "api_token", "https://dev.bitly.com/docs/getting-started/authentication/",
         lambda: hx(40), env="BITLY_ACCESS_TOKEN", field="access_token", url="https://api-ssl.bitly.com/v4/shorten")
    saas("Mixpanel", "project secret", "api_token", "https://developer.mixpanel.com/reference/project-secret",
         lambda: hx(32), env="MIXPANEL_API_SECRET", field="api_secret", header=None,
         custom=[lambda s, p: f"curl https://mixpanel.com/api/2.0/export -u {s}: -d from_date=2024-01-01 -d to_date=2024-01-31"])
    saas("Amplitude", "secret key", "api_token", "https://amplitude.com/docs/apis/authentication",
         lambda: hx(32), env="AMPLITUDE_SECRET_KEY", field="secret_key", header=None,
         custom=[lambda s, p: f"curl -u {hx(32)}:{s} 'https://amplitude.com/api/2/export?start=20240101T00&end=20240102T00'"])
    saas("Segment", "source write key", "api_token", "https://segment.com/docs/connections/find-writekey/",
         lambda: rs(32), env="SEGMENT_WRITE_KEY", field="write_key", header=None,
         styles=["js", "env", "python_kw", "json"])
    saas("PostHog", "personal API key phx_", "api_token", "https://posthog.com/docs/api#personal-api-keys",
         lambda: "phx_" + rs(43), env="POSTHOG_PERSONAL_API_KEY", field="personal_api_key",
         url="https://us.posthog.com/api/projects/")
    saas("Lokalise", "API token", "api_token", "https://developers.lokalise.com/reference/api-authentication",
         lambda: hx(40), env="LOKALISE_API_TOKEN", field="api_token", header=("X-Api-Token", "{}"),
         url="https://api.lokalise.com/api2/projects")
    saas("Cloudinary", "API secret in CLOUDINARY_URL", "api_token", "https://cloudinary.com/documentation/how_to_integrate_cloudinary#cloudinary_url",
         lambda: rs(27, ALNUM + "-_"), env="CLOUDINARY_API_SECRET", field="api_secret", header=None,
         custom=[lambda s, p: f"CLOUDINARY_URL=cloudinary://{num(15)}:{s}@acme-media",
                 lambda s, p: f"cloudinary.config(cloud_name='acme-media', api_key='{num(15)}', api_secret='{s}')"])
    saas("Finnhub", "API key", "api_token", GL.format("finnhub-access-token"), lambda: "c" + rs(19, LOALNUM),
         env="FINNHUB_API_KEY", field="finnhub_token", header=("X-Finnhub-Token", "{}"),
         url="https://finnhub.io/api/v1/quote?symbol=AAPL")
    saas("Zoom", "Server-to-Server OAuth client secret", "oauth_secret", "https://developers.zoom.us/docs/internal-apps/s2s-oauth/",
         lambda: rs(32), env="ZOOM_CLIENT_SECRET", field="client_secret", header=None,
         custom=[lambda s, p: f"curl -X POST 'https://zoom.us/oauth/token?grant_type=account_credentials&account_id={rs(22)}' -u '{rs(22)}:{s}'"])

    # --- identity ----------------------------------------------------------------------------
    saas("Okta", "API token 00", "api_token", GL.format("okta-access-token") + "; https://developer.okta.com/docs/guides/create-an-api-token/",
         lambda: "00" + rs(40, ALNUM + "-_"), n=3, env="OKTA_API_TOKEN", field="okta_token",
         header=("Authorization", "SSWS {}"), url="https://acme.okta.com/api/v1/users?limit=25",
         custom=[lambda s, p: f"okta:\n  client:\n    orgUrl: https://acme.okta.com\n    token: {s}"])
    saas("Auth0", "client secret", "oauth_secret", "https://auth0.com/docs/get-started/applications/application-credentials",
         lambda: rs(64, ALNUM + "-_"), n=3, env="AUTH0_CLIENT_SECRET", field="client_secret", header=None,
         custom=[lambda s, p: json.dumps({"client_id": rs(32), "client_secret": s, "audience": "https://acme.us.auth0.com/api/v2/",
                                          "grant_type": "client_credentials"}),
                 lambda s, p: f"AUTH0_DOMAIN=acme.us.auth0.com\nAUTH0_CLIENT_ID={rs(32)}\nAUTH0_CLIENT_SECRET={s}"])
    saas("Clerk", "secret key sk_live_", "api_token", "https://clerk.com/docs/deployments/clerk-environment-variables",
         lambda: "sk_live_" + rs(42), env="CLERK_SECRET_KEY", field="secret_key", url="https://api.clerk.com/v1/users")
    saas("Google OAuth", "client secret GOCSPX-", "oauth_secret", "https://developers.google.com/identity/protocols/oauth2; public scanner rule GOCSPX-[A-Za-z0-9_-]{28}",
         lambda: "GOCSPX-" + rs(28, ALNUM + "-_"), n=3, env="GOOGLE_CLIENT_SECRET", field="client_secret", header=None,
         custom=[lambda s, p: json.dumps({"installed": {"client_id": num(12) + "-" + rs(32, LOALNUM) + ".apps.googleusercontent.com",
                                                        "project_id": "acme-desktop", "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                                                        "token_uri": "https://oauth2.googleapis.com/token", "client_secret": s,
                                                        "redirect_uris": ["http://localhost"]}})])
    saas("Google OAuth", "refresh token 1//0", "oauth_token", "https://developers.google.com/identity/protocols/oauth2#expiration",
         lambda: "1//0" + R.choice("egc") + rs(98, ALNUM + "-_"), env="GOOGLE_REFRESH_TOKEN", field="refresh_token",
         header=None, custom=[lambda s, p: json.dumps({"type": "authorized_user", "client_id": num(12) + "-" + rs(32, LOALNUM) +
                                                      ".apps.googleusercontent.com", "client_secret": "GOCSPX-" + rs(28, ALNUM + "-_"),
                                                      "refresh_token": s}, indent=2)])
    saas("Google OAuth", "access token ya29.", "oauth_token", "https://developers.google.com/identity/protocols/oauth2",
         lambda: "ya29.a0A" + rs(R.randint(150, 200), ALNUM + "-_"), env="GOOGLE_ACCESS_TOKEN", field="access_token",
         url="https://www.googleapis.com/drive/v3/files")
    saas("Firebase", "Cloud Messaging legacy server key", "api_token", "https://firebase.google.com/docs/cloud-messaging/auth-server#authorize-http-requests",
         lambda: "AAAA" + rs(7, ALNUM + "-_") + ":APA91b" + rs(134, ALNUM + "-_"), env="FCM_SERVER_KEY", field="server_key",
         header=("Authorization", "key={}"), url="https://fcm.googleapis.com/fcm/send")

    # --- hosting / PaaS / databases-as-a-service ------------------------------------------------
    saas("Heroku", "API key (UUID)", "api_token", GL.format("heroku-api-key"), ruuid, env="HEROKU_API_KEY",
         field="heroku_api_key", header=None,
         custom=[lambda s, p: f"machine api.heroku.com\n  login deploy@acme.io\n  password {s}\nmachine git.heroku.com\n  login deploy@acme.io\n  password {s}"])
    saas("Heroku", "API key HRKU-AA", "api_token", GL.format("heroku-api-key-v2"),
         lambda: "HRKU-AA" + rs(58, ALNUM + "-_"), env="HEROKU_API_KEY", field="api_key",
         header=("Authorization", "Bearer {}"), url="https://api.heroku.com/apps")
    saas("Fly.io", "org token fo1_", "api_token", GL.format("flyio-access-token"),
         lambda: "fo1_" + rs(43, ALNUM + "-_"), env="FLY_API_TOKEN", field="access_token",
         url="https://api.machines.dev/v1/apps")
    saas("Fly.io", "macaroon token FlyV1 fm2_", "api_token", GL.format("flyio-access-token"),
         lambda: "fm2_" + b64e(rb(R.randint(180, 240))).rstrip("=") + ",fm2_" + b64e(rb(R.randint(90, 120))).rstrip("="),
         env="FLY_API_TOKEN", field="token", header=("Authorization", "FlyV1 {}"),
         url="https://api.machines.dev/v1/apps/acme-web/machines")
    saas("Vercel", "access token", "api_token", "https://vercel.com/docs/rest-api#creating-an-access-token",
         lambda: rs(24), env="VERCEL_TOKEN", field="token", url="https://api.vercel.com/v9/projects",
         custom=[lambda s, p: f"vercel deploy --prod --token={s}"])
    saas("Netlify", "personal access token nfp_", "api_token", "public scanner rule nfp_[A-Za-z0-9_]{36}; https://docs.netlify.com/api/get-started/#authentication",
         lambda: "nfp_" + rs(36, ALNUM + "_"), env="NETLIFY_AUTH_TOKEN", field="auth_token",
         url="https://api.netlify.com/api/v1/sites")
    saas("Netlify", "legacy access token", "api_token", GL.format("netlify-access-token"), lambda: rs(43, ALNUM + "-_"),
         env="NETLIFY_AUTH_TOKEN", field="netlify_token", header=None, styles=["env", "gha", "toml"])
    saas("Render", "API key rnd_", "api_token", "https://render.com/docs/api#1-create-an-api-key",
         lambda: "rnd_" + rs(32), env="RENDER_API_KEY", field="api_key", url="https://api.render.com/v1/services")
    saas("Railway", "API token", "api_token", "https://docs.railway.com/guides/public-api#authentication",
         ruuid, env="RAILWAY_TOKEN", field="token", url="https://backboard.railway.com/graphql/v2")
    saas("Supabase", "management access token sbp_", "api_token", "https://supabase.com/docs/reference/api/introduction; public scanner rule sbp_[a-f0-9]{40}",
         lambda: "sbp_" + hx(40), env="SUPABASE_ACCESS_TOKEN", field="access_token",
         url="https://api.supabase.com/v1/projects")
    saas("Supabase", "secret API key sb_secret_", "api_token", "https://supabase.com/docs/guides/api/api-keys",
         lambda: "sb_secret_" + rs(22, ALNUM + "-_") + "_" + rs(8, ALNUM + "-_"), env="SUPABASE_SECRET_KEY",
         field="service_key", header=("apikey", "{}"), url="https://abcdefghijklmnopqrst.supabase.co/rest/v1/profiles")
    saas("PlanetScale", "service token pscale_tkn_", "api_token", GL.format("planetscale-api-token"),
         lambda: "pscale_tkn_" + rs(43, ALNUM + "_"), env="PLANETSCALE_SERVICE_TOKEN", field="service_token",
         header=("Authorization", "{}"), url="https://api.planetscale.com/v1/organizations")
    saas("PlanetScale", "database password pscale_pw_", "api_token", GL.format("planetscale-password"),
         lambda: "pscale_pw_" + rs(43, ALNUM + "_"), env="DATABASE_PASSWORD", field="password", header=None,
         custom=[lambda s, p: f"DATABASE_URL=mysql://{rs(12, LOALNUM)}:{s}@aws.connect.psdb.cloud/shop?ssl={{\"rejectUnauthorized\":true}}"])
    saas("PlanetScale", "OAuth token pscale_oauth_", "oauth_token", GL.format("planetscale-oauth-token"),
         lambda: "pscale_oauth_" + rs(43, ALNUM + "_"), env="PLANETSCALE_OAUTH_TOKEN", field="oauth_token",
         url="https://api.planetscale.com/v1/user")
    saas("Neon", "API key napi_", "api_token", "https://neon.tech/docs/manage/api-keys",
         lambda: "napi_" + rs(64, LOALNUM), env="NEON_API_KEY", field="api_key",
         url="https://console.neon.tech/api/v2/projects")
    saas("MongoDB Atlas", "service account secret mdb_sa_sk_", "oauth_secret",
         "https://www.mongodb.com/docs/atlas/api/service-accounts-overview/",
         lambda: "mdb_sa_sk_" + rs(40, ALNUM + "_"), env="MONGODB_ATLAS_CLIENT_SECRET", field="client_secret", header=None,
         custom=[lambda s, p: f"atlas:\n  client_id: mdb_sa_id_{hx(24)}\n  client_secret: {s}"])
    saas("MongoDB Atlas", "programmatic API private key", "api_token", TH.format("mongodb"),
         ruuid, env="MONGODB_ATLAS_PRIVATE_KEY", field="private_key", header=None,
         custom=[lambda s, p: f"curl --digest -u '{rs(8, LO)}:{s}' https://cloud.mongodb.com/api/atlas/v2/groups"])
    saas("Confluent Cloud", "API secret", "api_token", GL.format("confluent-secret-key"),
         lambda: rs(64, ALNUM + "+/"), env="CONFLUENT_CLOUD_API_SECRET", field="confluent_api_secret", header=None,
         custom=[lambda s, p: f"confluent api-key store {rs(16, UPALNUM)} {s} --resource lkc-{rs(5, LOALNUM)}"])
    saas("Cloudflare", "API token", "api_token", GL.format("cloudflare-api-key") + "; https://developers.cloudflare.com/fundamentals/api/get-started/create-token/",
         lambda: rs(40, ALNUM + "-_"), n=3, env="CLOUDFLARE_API_TOKEN", field="api_token",
         url="https://api.cloudflare.com/client/v4/user/tokens/verify")
    saas("Cloudflare", "global API key", "api_token", GL.format("cloudflare-global-api-key"), lambda: hx(37),
         env="CLOUDFLARE_API_KEY", field="cloudflare_api_key", header=("X-Auth-Key", "{}"),
         url="https://api.cloudflare.com/client/v4/zones")
    saas("Cloudflare", "Origin CA key v1.0-", "api_token", GL.format("cloudflare-origin-ca-key"),
         lambda: "v1.0-" + hx(24) + "-" + hx(146), env="CF_ORIGIN_CA_KEY", field="origin_ca_key",
         header=("X-Auth-User-Service-Key", "{}"), url="https://api.cloudflare.com/client/v4/certificates")
    saas("Fastly", "API token", "api_token", GL.format("fastly-api-token"), lambda: rs(32, ALNUM + "-_"),
         env="FASTLY_API_TOKEN", field="fastly_api_token", header=("Fastly-Key", "{}"),
         url="https://api.fastly.com/service")
    saas("Akamai", "EdGrid client secret", "api_token", "https://techdocs.akamai.com/developer/docs/set-up-authentication-credentials",
         lambda: b64e(rb(32)), env="AKAMAI_CLIENT_SECRET", field="client_secret", header=None,
         custom=[lambda s, p: f"[default]\nclient_secret = {s}\nhost = akab-{rs(16, LOALNUM)}-{rs(16, LOALNUM)}.luna.akamaiapis.net\n"
                 f"access_token = akab-{rs(16, LOALNUM)}-{rs(16, LOALNUM)}\nclient_token = akab-{rs(16, LOALNUM)}-{rs(16, LOALNUM)}"])
    saas("Akamai", "EdgeGrid access token akab-", "api_token", "https://techdocs.akamai.com/developer/docs/set-up-authentication-credentials",
         lambda: "akab-" + rs(16, LOALNUM) + "-" + rs(16, LOALNUM), env="AKAMAI_ACCESS_TOKEN", field="access_token",
         header=None, styles=["env", "ini", "json"])
    saas("DigitalOcean", "personal access token dop_v1_", "api_token", GL.format("digitalocean-pat"),
         lambda: "dop_v1_" + hx(64), n=3, env="DIGITALOCEAN_TOKEN", field="token",
         url="https://api.digitalocean.com/v2/droplets",
         custom=[lambda s, p: f"doctl auth init --access-token {s}"])
    saas("DigitalOcean", "OAuth token doo_v1_", "oauth_token", GL.format("digitalocean-access-token"),
         lambda: "doo_v1_" + hx(64), env="DO_OAUTH_TOKEN", field="access_token", url="https://api.digitalocean.com/v2/account")
    saas("DigitalOcean", "OAuth refresh token dor_v1_", "oauth_token", GL.format("digitalocean-refresh-token"),
         lambda: "dor_v1_" + hx(64), env="DO_REFRESH_TOKEN", field="refresh_token", header=None,
         custom=[lambda s, p: f"curl -X POST 'https://cloud.digitalocean.com/v1/oauth/token?grant_type=refresh_token&refresh_token={s}'"])
    saas("DigitalOcean", "Spaces secret key", "cloud_key", "https://docs.digitalocean.com/products/spaces/how-to/manage-access/",
         lambda: b64e(rb(32)).rstrip("="), env="SPACES_SECRET_ACCESS_KEY", field="secret_key", header=None,
         custom=[lambda s, p: f"[default]\naccess_key = DO00{rs(16, UPALNUM)}\nsecret_key = {s}\nhost_base = fra1.digitaloceanspaces.com"])
    saas("Linode", "personal access token", "api_token", "https://techdocs.akamai.com/linode-api/reference/get-started#personal-access-tokens",
         lambda: hx(64), env="LINODE_TOKEN", field="token", url="https://api.linode.com/v4/linode/instances")
    saas("Vultr", "API key", "api_token", "https://www.vultr.com/api/#section/Authentication",
         lambda: rs(36, UPALNUM), env="VULTR_API_KEY", field="api_key", url="https://api.vultr.com/v2/instances")
    saas("Hetzner Cloud", "API token", "api_token", "https://docs.hetzner.cloud/#authentication",
         lambda: rs(64), env="HCLOUD_TOKEN", field="token", url="https://api.hetzner.cloud/v1/servers")
    saas("Scaleway", "secret key", "cloud_key", "https://www.scaleway.com/en/docs/identity-and-access-management/iam/concepts/#api-key",
         ruuid, env="SCW_SECRET_KEY", field="secret_key", header=("X-Auth-Token", "{}"),
         url="https://api.scaleway.com/instance/v1/zones/fr-par-1/servers",
         custom=[lambda s, p: f"access_key: SCW{rs(17, UPALNUM)}\nsecret_key: {s}\ndefault_organization_id: {ruuid()}\ndefault_region: fr-par"])
    saas("OVHcloud", "application secret", "api_token", "https://help.ovhcloud.com/csm/en-gb-api-getting-started-ovhcloud-api",
         lambda: rs(32, LOALNUM), env="OVH_APPLICATION_SECRET", field="application_secret", header=None,
         custom=[lambda s, p: f"[default]\nendpoint=ovh-eu\n\n[ovh-eu]\napplication_key={rs(16, LOALNUM)}\napplication_secret={s}\nconsumer_key={rs(32, LOALNUM)}"])
    saas("Backblaze B2", "application key K00", "cloud_key", "https://www.backblaze.com/docs/cloud-storage-application-keys",
         lambda: "K00" + rs(28, ALNUM + "+/"), env="B2_APPLICATION_KEY", field="application_key", header=None,
         custom=[lambda s, p: f"b2 account authorize 00{hx(10)}0000000{num(3)} {s}"])


# ============================================================================================
# 2. Cloud provider keys
# ============================================================================================

def build_cloud():
    AWSD = "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_access-keys.html; " + GL.format("aws-access-token")
    AWSF = "https://docs.aws.amazon.com/cli/latest/userguide/cli-configure-files.html"
    akid = lambda p="AKIA": p + rs(16, B32)
    sak = lambda: rs(40, ALNUM + "/+")
    regions = ["us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2", "eu-central-1"]
    # pairs: one line per secret, same text
    pair_ctx = [
        lambda i, s: f"[default]\naws_access_key_id = {i}\naws_secret_access_key = {s}\nregion = {R.choice(regions)}",
        lambda i, s: f"export AWS_ACCESS_KEY_ID={i}\nexport AWS_SECRET_ACCESS_KEY={s}\nexport AWS_DEFAULT_REGION={R.choice(regions)}",
        lambda i, s: f"s3 = boto3.client(\n    \"s3\",\n    aws_access_key_id=\"{i}\",\n    aws_secret_access_key=\"{s}\",\n)",
        lambda i, s: f'provider "aws" {{\n  region     = "{R.choice(regions)}"\n  access_key = "{i}"\n  secret_key = "{s}"\n}}',
        lambda i, s: f"User name,Password,Access key ID,Secret access key,Console login link\nci-deployer,,{i},{s},https://{num(12)}.signin.aws.amazon.com/console",
        lambda i, s: f"docker run -e AWS_ACCESS_KEY_ID={i} -e AWS_SECRET_ACCESS_KEY={s} amazon/aws-cli s3 ls s3://acme-backups",
    ]
    for mk in pair_ctx:
        i, s = akid(), sak()
        t = mk(i, s)
        add("AWS", "access key ID AKIA", "cloud_key", AWSD, i, t, "cloud")
        add("AWS", "secret access key", "cloud_key", AWSD + "; " + AWSF, s, t, "cloud")
    for _ in range(3):
        i, s = akid("ASIA"), sak()
        tok = "IQoJb3JpZ2luX2VjE" + rs(R.randint(380, 520), ALNUM + "+/") + "=="
        t = R.choice([
            json.dumps({"Credentials": {"AccessKeyId": i, "SecretAccessKey": s, "SessionToken": tok,
                                        "Expiration": "2024-07-02T18:41:07+00:00"},
                        "AssumedRoleUser": {"AssumedRoleId": "AROA" + rs(17, B32) + ":ci-session",
                                            "Arn": f"arn:aws:sts::{num(12)}:assumed-role/deploy/ci-session"}}, indent=2),
            f"[ci]\naws_access_key_id = {i}\naws_secret_access_key = {s}\naws_session_token = {tok}",
        ])
        add("AWS", "temporary access key ID ASIA", "cloud_key", AWSD, i, t, "cloud")
        add("AWS", "STS session token", "session_token", "https://docs.aws.amazon.com/STS/latest/APIReference/API_Credentials.html", tok, t, "cloud")

    def bedrock():
        inner = "BedrockAPIKey-" + rs(4, LOALNUM) + "-at-" + num(12) + ":" + b64e(rb(44))
        return "ABSK" + b64e(inner.encode())
    saas("AWS", "Bedrock API key ABSK", "api_token", "https://docs.aws.amazon.com/bedrock/latest/userguide/api-keys.html",
         bedrock, env="AWS_BEARER_TOKEN_BEDROCK", field="api_key", category="cloud",
         url="https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-haiku-20240307-v1:0/converse")

    # --- GCP -----------------------------------------------------------------------------------------
    for _ in range(3):
        proj = R.choice(["acme-data-prod", "globex-analytics", "initech-ml", "umbrella-web"]) + "-" + num(4)
        acct = R.choice(["etl-runner", "terraform", "github-actions", "backup-agent"])
        key_id = hx(40)
        pk = pem("PRIVATE KEY", rsa_pkcs8_der()) + "\n"
        sa = {"type": "service_account", "project_id": proj, "private_key_id": key_id, "private_key": pk,
              "client_email": f"{acct}@{proj}.iam.gserviceaccount.com", "client_id": num(21),
              "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": "https://oauth2.googleapis.com/token",
              "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
              "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{acct}%40{proj}.iam.gserviceaccount.com",
              "universe_domain": "googleapis.com"}
        t = json.dumps(sa, indent=2)
        esc = json.dumps(pk)[1:-1]
        add("Google Cloud", "service account key JSON private_key", "private_key",
            "https://cloud.google.com/iam/docs/keys-create-delete; " + GL.format("private-key"), esc, t, "cloud")
        add("Google Cloud", "service account key JSON private_key_id", "cloud_key",
            "https://cloud.google.com/iam/docs/keys-create-delete", key_id, t, "cloud")
    saas("Google Cloud", "API key AIza", "api_token", "https://cloud.google.com/docs/authentication/api-keys; " + GL.format("gcp-api-key"),
         lambda: "AIzaSy" + rs(33, ALNUM + "-_"), n=3, env="GOOGLE_API_KEY", field="api_key", header=("X-Goog-Api-Key", "{}"),
         url="https://maps.googleapis.com/maps/api/geocode/json?address=Berlin", category="cloud",
         custom=[lambda s, p: f'<script async src="https://maps.googleapis.com/maps/api/js?key={s}&callback=initMap"></script>',
                 lambda s, p: json.dumps({"project_info": {"project_number": num(12), "project_id": "acme-mobile"},
                                          "client": [{"api_key": [{"current_key": s}]}]}, indent=2)])

    # --- Azure -----------------------------------------------------------------------------------------
    AZS = "https://learn.microsoft.com/en-us/azure/storage/common/storage-configure-connection-string"
    acct = lambda: R.choice(["acmeprod", "globexlogs", "initechdata", "contosobackup"]) + rs(4, LOALNUM)

    def ident88(sig):
        return b64e(rb(57))[:76] + sig + rs(5, ALNUM + "+/") + R.choice("AQgw") + "=="

    def ident44(sig):
        return rs(33, ALNUM + "+/") + sig + R.choice("ABCDEFGHIJKLMNOP") + rs(5, ALNUM + "+/") + "="
    for legacy in (True, True, True, False, False):
        key = b64e(rb(64)) if legacy else ident88("+ASt")
        a = acct()
        t = R.choice([
            f"DefaultEndpointsProtocol=https;AccountName={a};AccountKey={key};EndpointSuffix=core.windows.net",
            json.dumps({"ConnectionStrings": {"Storage": f"DefaultEndpointsProtocol=https;AccountName={a};AccountKey={key};EndpointSuffix=core.windows.net"}}, indent=2),
            f"az storage blob upload --account-name {a} --account-key {key} -c backups -f dump.sql.gz",
        ])
        add("Azure Storage", "account key" + ("" if legacy else " (identifiable +ASt)"), "cloud_key",
            AZS + ("" if legacy else "; " + MSU.format("SEC101/152 AzureStorageAccountIdentifiableKey")), key, t, "cloud")
    for _ in range(3):
        sig = b64e(rb(32))
        sig_enc = urllib.parse.quote(sig, safe="")
        a = acct()
        q = (f"sv=2022-11-02&ss=bfqt&srt=sco&sp=rwdlacupiytfx&se=2025-{R.randint(1, 12):02d}-28T17:00:00Z"
             f"&st=2024-06-01T09:00:00Z&spr=https&sig={sig_enc}")
        t = R.choice([f"https://{a}.blob.core.windows.net/exports/report.csv?{q}",
                      f"BlobEndpoint=https://{a}.blob.core.windows.net/;SharedAccessSignature={q}",
                      f"AZURE_STORAGE_SAS_TOKEN=\"?{q}\""])
        add("Azure Storage", "SAS token sig=", "cloud_key", "https://learn.microsoft.com/en-us/rest/api/storageservices/create-account-sas",
            sig_enc, t, "cloud")
    aad = lambda: rs(3, ALNUM + "_~.-") + R.choice("78") + "Q~" + rs(34, ALNUM + "_~.-")
    saas("Azure AD / Entra ID", "client secret (xxx8Q~)", "oauth_secret", MSU.format("SEC101/156 AadClientAppIdentifiableCredentials") +
         "; " + GL.format("azure-ad-client-secret"),
         lambda: rs(3, ALNUM + "_~.-") + "8Q~" + rs(34, ALNUM + "_~.-"), n=3, env="AZURE_CLIENT_SECRET",
         field="client_secret", header=None, category="cloud",
         custom=[lambda s, p: f"az login --service-principal -u {ruuid()} -p '{s}' --tenant {ruuid()}",
                 lambda s, p: json.dumps({"AzureAd": {"Instance": "https://login.microsoftonline.com/", "TenantId": ruuid(),
                                                      "ClientId": ruuid(), "ClientSecret": s}}, indent=2)])
    saas("Azure AD / Entra ID", "legacy client secret (xxx7Q~)", "oauth_secret", MSU.format("SEC101/156"),
         lambda: rs(3, ALNUM + "_~.-") + "7Q~" + rs(31, ALNUM + "_~.-"), env="ARM_CLIENT_SECRET", field="client_secret",
         header=None, category="cloud", styles=["env", "export", "gha", "terraform"])
    for sig, svc, fmt, src in [("+ASb", "servicebus", "Azure Service Bus", "SEC101/171"), ("+AEh", "servicebus", "Azure Event Hubs", "SEC101/172"),
                               ("+ARm", "servicebus", "Azure Relay", "SEC101/173")]:
        for legacy in (True, True, False, False):
            key = b64e(rb(32)) if legacy else ident44(sig)
            ns = R.choice(["acme-orders", "globex-telemetry", "initech-events"]) + "-" + rs(3, LOALNUM)
            entity = ";EntityPath=" + R.choice(["orders", "clicks", "audit"]) if fmt == "Azure Event Hubs" else ""
            cs = f"Endpoint=sb://{ns}.{svc}.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={key}{entity}"
            t = R.choice([cs, f"\"{fmt.split()[-1]}ConnectionString\": \"{cs}\"", f"SERVICEBUS_CONNECTION_STRING=\"{cs}\"",
                          f"var client = new ServiceBusClient(\"{cs}\");"])
            add(fmt, "SharedAccessKey in connection string" + ("" if legacy else f" (identifiable {sig})"), "connection_string",
                "https://learn.microsoft.com/en-us/azure/service-bus-messaging/service-bus-sas" +
                ("" if legacy else "; " + MSU.format(src)), key, t, "cloud")
    for legacy in (True, True, False, False):
        key = b64e(rb(64)) if legacy else ident88("ACDb")
        cs = f"AccountEndpoint=https://{acct()}.documents.azure.com:443/;AccountKey={key};"
        add("Azure Cosmos DB", "account key" + ("" if legacy else " (identifiable ACDb)"), "connection_string",
            "https://learn.microsoft.com/en-us/azure/cosmos-db/secure-access-to-data" + ("" if legacy else "; " + MSU.format("SEC101/160")),
            key, R.choice([cs, f"COSMOS_CONNECTION_STRING={cs}", json.dumps({"CosmosDb": {"ConnectionString": cs}}, indent=2)]), "cloud")
    for _ in range(2):
        key = rs(44, ALNUM + "-_") + "AzFu" + rs(5, ALNUM + "-_") + R.choice("AQgw") + "=="
        add("Azure Functions", "function key (identifiable AzFu)", "api_token", MSU.format("SEC101/158 AzureFunctionIdentifiableKey"),
            key, R.choice([f"https://acme-fn-{rs(4, LOALNUM)}.azurewebsites.net/api/HttpTrigger1?code={key}",
                           f"curl -H 'x-functions-key: {key}' https://acme-fn.azurewebsites.net/api/ingest"]), "cloud")
    for _ in range(2):
        key = ident44("AzCa")
        if R.random() < 0.5:
            t = f"acme-cache.redis.cache.windows.net:6380,password={key},ssl=True,abortConnect=False"
        else:
            key = urllib.parse.quote(key, safe="")  # as it appears inside the URI
            t = f"REDIS_URL=rediss://:{key}@acme-cache.redis.cache.windows.net:6380/0"
        add("Azure Cache for Redis", "access key (identifiable AzCa)", "connection_string", MSU.format("SEC101/154"), key, t, "cloud")
    for _ in range(2):
        key = rs(42, ALNUM) + "AzSe" + R.choice("ABCD") + rs(5, ALNUM)
        add("Azure AI Search", "admin key (identifiable AzSe)", "api_token", MSU.format("SEC101/166"), key,
            R.choice([f"curl -H 'api-key: {key}' 'https://acme-search.search.windows.net/indexes?api-version=2023-11-01'",
                      f"AZURE_SEARCH_ADMIN_KEY={key}"]), "cloud")
    for _ in range(2):
        key = rs(42, ALNUM + "+/") + "+ACR" + R.choice("ABCD") + rs(5, ALNUM + "+/")
        add("Azure Container Registry", "admin password (identifiable +ACR)", "cloud_key", MSU.format("SEC101/176"), key,
            R.choice([f"docker login acmeregistry.azurecr.io -u acmeregistry -p {key}",
                      json.dumps({"auths": {"acmeregistry.azurecr.io": {"username": "acmeregistry", "password": key}}})]), "cloud")
    for _ in range(2):
        key = ident44("AIoT")
        add("Azure IoT Hub", "shared access key (identifiable AIoT)", "connection_string", MSU.format("SEC101/178"), key,
            f"HostName=acme-iot.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey={key}", "cloud")
    for _ in range(2):
        key = ident88("+ABa")
        add("Azure Batch", "account key (identifiable +ABa)", "cloud_key", MSU.format("SEC101/163"), key,
            R.choice([f"az batch account login -n acmebatch -g rg-compute --shared-key-auth\nAZURE_BATCH_ACCESS_KEY={key}",
                      f"batch_client = BatchServiceClient(SharedKeyCredentials('acmebatch', '{key}'), batch_url='https://acmebatch.westeurope.batch.azure.com')"]), "cloud")
    saas("Azure OpenAI", "API key", "api_token", "https://learn.microsoft.com/en-us/azure/ai-services/openai/reference#authentication",
         lambda: hx(32), env="AZURE_OPENAI_API_KEY", field="api_key", header=("api-key", "{}"), category="cloud",
         url="https://acme-openai.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-02-01")
    saas("Azure API Management", "subscription key", "api_token", "https://learn.microsoft.com/en-us/azure/api-management/api-management-subscriptions",
         lambda: hx(32), env="APIM_SUBSCRIPTION_KEY", field="subscription_key", header=("Ocp-Apim-Subscription-Key", "{}"),
         url="https://acme-apim.azure-api.net/orders/v1/orders", category="cloud")

    # --- other clouds ----------------------------------------------------------------------------------
    saas("Alibaba Cloud", "AccessKey ID LTAI", "cloud_key", GL.format("alibaba-access-key-id"),
         lambda: "LTAI5t" + rs(18), env="ALIBABA_CLOUD_ACCESS_KEY_ID", field="access_key_id", header=None, category="cloud",
         styles=["env", "ini", "json", "yaml"])
    for _ in range(2):
        i, s = "LTAI5t" + rs(18), rs(30)
        t = R.choice([f"aliyun configure set --profile prod --mode AK --region cn-hangzhou --access-key-id {i} --access-key-secret {s}",
                      f"ALIBABA_CLOUD_ACCESS_KEY_ID={i}\nALIBABA_CLOUD_ACCESS_KEY_SECRET={s}"])
        add("Alibaba Cloud", "AccessKey secret", "cloud_key", GL.format("alibaba-secret-key"), s, t, "cloud")
    for _ in range(2):
        i, s = "AKID" + rs(32), rs(32)
        t = R.choice([f"TENCENTCLOUD_SECRET_ID={i}\nTENCENTCLOUD_SECRET_KEY={s}",
                      f"cred = credential.Credential(\"{i}\", \"{s}\")",
                      f'provider "tencentcloud" {{\n  secret_id  = "{i}"\n  secret_key = "{s}"\n  region     = "ap-guangzhou"\n}}'])
        add("Tencent Cloud", "SecretKey", "cloud_key", "Tencent Cloud CAM docs, API keys (SecretId AKID..., SecretKey); " + TH.format("tencentcloudkey"), s, t, "cloud")
        add("Tencent Cloud", "SecretId AKID", "cloud_key", "Tencent Cloud CAM docs, API keys (SecretId AKID..., SecretKey)", i, t, "cloud")
    for _ in range(2):
        i, s = rs(20, UPALNUM), rs(40)
        t = R.choice([f"HUAWEICLOUD_SDK_AK={i}\nHUAWEICLOUD_SDK_SK={s}\nHUAWEICLOUD_SDK_PROJECT_ID={hx(32)}",
                      f"credentials = BasicCredentials(ak=\"{i}\", sk=\"{s}\", project_id=\"{hx(32)}\")"])
        add("Huawei Cloud", "secret access key (SK)", "cloud_key", "Huawei Cloud IAM docs, access keys (AK: 20 uppercase alphanumerics, SK: 40 alphanumerics)", s, t, "cloud")
    saas("IBM Cloud", "API key", "cloud_key", "https://cloud.ibm.com/docs/account?topic=account-userapikey; " + TH.format("ibmclouduserkey"),
         lambda: rs(44, ALNUM + "-_"), env="IBMCLOUD_API_KEY", field="apikey", header=None, category="cloud",
         custom=[lambda s, p: json.dumps({"name": "ci-deployer", "description": "", "createdAt": "2024-03-11T10:22+0000",
                                          "apikey": s}, indent=2),
                 lambda s, p: f"ibmcloud login --apikey {s} -r us-south"])
    for _ in range(2):
        s = hx(48)
        t = R.choice([json.dumps({"apikey": rs(44, ALNUM + "-_"), "cos_hmac_keys": {"access_key_id": hx(32), "secret_access_key": s},
                                  "endpoints": "https://control.cloud-object-storage.cloud.ibm.com/v2/endpoints"}, indent=2),
                      f"[ibm-cos]\ntype = s3\nprovider = IBMCOS\naccess_key_id = {hx(32)}\nsecret_access_key = {s}"])
        add("IBM Cloud Object Storage", "HMAC secret access key", "cloud_key", "https://cloud.ibm.com/docs/cloud-object-storage?topic=cloud-object-storage-uhc-hmac-credentials-main", s, t, "cloud")
    for _ in range(2):
        s = b64e(rb(32))
        t = R.choice([f"[oci-s3]\naws_access_key_id = {hx(40)}\naws_secret_access_key = {s}\nendpoint_url = https://acmetenancy.compat.objectstorage.eu-frankfurt-1.oraclecloud.com",
                      f"OCI_CUSTOMER_SECRET_KEY={s}"])
        add("Oracle Cloud", "customer secret key", "cloud_key", "https://docs.oracle.com/en-us/iaas/Content/Identity/Tasks/managingcredentials.htm#create-secret-key", s, t, "cloud")
    saas("Oracle Cloud", "auth token", "api_token", "https://docs.oracle.com/en-us/iaas/Content/Registry/Tasks/registrygettingauthtoken.htm",
         lambda: rs(20, ALNUM + "+-:;<>()[]._#"), env="OCI_AUTH_TOKEN", field="auth_token", header=None, category="cloud",
         custom=[lambda s, p: f"docker login fra.ocir.io -u 'acmetenancy/oracleidentitycloudservice/ci@acme.io' -p '{s}'"])
    saas("Yandex Cloud", "API key AQVN", "cloud_key", GL.format("yandex-api-key"), lambda: "AQVN" + rs(36, ALNUM + "-_"),
         env="YC_API_KEY", field="yandex_api_key", header=("Authorization", "Api-Key {}"), category="cloud",
         url="https://llm.api.cloud.yandex.net/foundationModels/v1/completion")
    saas("Yandex Cloud", "static access key secret YC", "cloud_key", GL.format("yandex-aws-access-token"),
         lambda: "YC" + rs(38, ALNUM + "-_"), env="YANDEX_SECRET_ACCESS_KEY", field="yandex_secret", header=None,
         category="cloud", custom=[lambda s, p: f"[yandex]\naws_access_key_id = YCAJE{rs(20, ALNUM + '-_')}\naws_secret_access_key = {s}"])
    saas("Yandex", "OAuth token y0_", "oauth_token", "https://yandex.cloud/en/docs/iam/concepts/authorization/oauth-token",
         lambda: "y0_AgAAAAA" + rs(50, ALNUM + "-_"), env="YC_TOKEN", field="yandex_oauth_token", header=("Authorization", "OAuth {}"),
         url="https://cloud-api.yandex.net/v1/disk/resources", category="cloud")


# ============================================================================================
# 3. Database / broker connection strings (secret = the password as it appears in the text)
# ============================================================================================

def uri_pw():
    """password for a URI userinfo: returns (raw, as-written-in-uri)."""
    raw = password(R.choice(["rand", "rand", "words", "human", "special"]))
    return raw, urllib.parse.quote(raw, safe="-_.~")


def user():
    return R.choice(["app", "svc_orders", "admin", "reporting_ro", "etl", "django", "postgres", "root",
                     "analytics", "billing_rw", "keycloak", "grafana"])


def host(kind):
    return R.choice({
        "pg": ["db.internal.acme.io", "orders-prod.cluster-c8x2kq1v0zte.eu-west-1.rds.amazonaws.com", "10.20.4.17",
               "pg-primary.data.svc.cluster.local", "acme-pg.postgres.database.azure.com"],
        "my": ["mysql-01.acme.internal", "billing.cw3xq9v1ab2c.us-east-1.rds.amazonaws.com", "127.0.0.1", "mariadb.prod.lan"],
        "mongo": ["mongo-0.mongo.data.svc.cluster.local", "10.0.3.21", "mongo.acme.internal"],
        "redis": ["redis.acme.internal", "cache-01.prod.lan", "master.acme-cache.abc123.use1.cache.amazonaws.com"],
        "mq": ["rabbitmq.acme.internal", "b-3f1c2a9e.mq.eu-west-1.amazonaws.com", "mq.prod.lan"],
    }[kind])


def build_db():
    DB = "connection_string"

    def many(vendor, fmt, source, makers, n=2):
        for mk in R.sample(makers, min(n, len(makers))) if len(makers) >= n else [R.choice(makers) for _ in range(n)]:
            secret, text = mk()
            add(vendor, fmt, DB, source, secret, text, "database")

    PG = "https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING"

    def pg(scheme):
        def mk():
            raw, enc = uri_pw()
            db = R.choice(["orders", "app_production", "keycloak", "analytics"])
            uri = f"{scheme}://{user()}:{enc}@{host('pg')}:5432/{db}" + R.choice(["", "?sslmode=require", "?sslmode=verify-full&application_name=api"])
            return enc, R.choice([f"DATABASE_URL={uri}", f'SQLALCHEMY_DATABASE_URI = "{uri}"',
                                  f"{stamp()} ERROR django.db: could not connect using {uri}: timeout expired",
                                  f"psql \"{uri}\" -c 'select count(*) from orders'",
                                  f"spring:\n  datasource:\n    url: {uri}"])
        return mk
    many("PostgreSQL", "postgres:// URI", PG, [pg("postgres")] * 3, n=3)
    many("PostgreSQL", "postgresql:// URI", PG, [pg("postgresql")] * 3, n=3)
    many("PostgreSQL", "postgresql+driver:// SQLAlchemy URL", "https://docs.sqlalchemy.org/en/20/core/engines.html#postgresql",
         [pg("postgresql+psycopg2"), pg("postgresql+asyncpg")])

    def pg_kv():
        pw = pw_conn().replace("'", "")
        return pw, R.choice([f"host={host('pg')} port=5432 dbname=orders user={user()} password={pw} sslmode=require",
                             f"conn = psycopg2.connect(\"host={host('pg')} dbname=app user={user()} password='{pw}'\")"])

    def pgpass():
        pw = pw_conn().replace(":", "")
        return pw, f"# ~/.pgpass\n{host('pg')}:5432:*:{user()}:{pw}"
    many("PostgreSQL", "libpq keyword/value DSN", PG, [pg_kv, pg_kv])
    many("PostgreSQL", ".pgpass line", "https://www.postgresql.org/docs/current/libpq-pgpass.html", [pgpass, pgpass])

    MY = "https://dev.mysql.com/doc/refman/8.0/en/connecting-using-uri-or-key-value-pairs.html"

    def my(scheme):
        def mk():
            raw, enc = uri_pw()
            uri = f"{scheme}://{user()}:{enc}@{host('my')}:3306/{R.choice(['shop', 'wordpress', 'billing'])}" + R.choice(["", "?charset=utf8mb4", "?ssl-mode=REQUIRED"])
            return enc, R.choice([f"DATABASE_URL=\"{uri}\"", f"engine = create_engine(\"{uri}\")", f"  db_url: {uri}",
                                  f"mysqlsh --uri {uri}"])
        return mk
    many("MySQL", "mysql:// URI", MY, [my("mysql")] * 3, n=3)
    many("MySQL", "mysql+pymysql:// SQLAlchemy URL", "https://docs.sqlalchemy.org/en/20/dialects/mysql.html", [my("mysql+pymysql")])
    many("MariaDB", "mariadb:// URI", "https://mariadb.com/docs/server/connect/", [my("mariadb")])

    def mycnf():
        pw = pw_conn()
        return pw, f"[client]\nuser={user()}\npassword=\"{pw}\"\nhost={host('my')}"

    def mycli():
        pw = pw_conn().replace("!", "")
        return pw, f"mysql -h {host('my')} -u {user()} -p'{pw}' shop < migrate.sql"
    many("MySQL", "option file / command-line password", "https://dev.mysql.com/doc/refman/8.0/en/option-files.html", [mycnf, mycli])

    MG = "https://www.mongodb.com/docs/manual/reference/connection-string/"

    def mongo(srv):
        def mk():
            raw, enc = uri_pw()
            if srv:
                uri = f"mongodb+srv://{user()}:{enc}@cluster0.{rs(5, LOALNUM)}.mongodb.net/{R.choice(['app', 'test', 'prod'])}?retryWrites=true&w=majority&appName=Cluster0"
            else:
                hosts = ",".join(f"mongo-{i}.mongo.data.svc.cluster.local:27017" for i in range(R.randint(1, 3)))
                uri = f"mongodb://{user()}:{enc}@{hosts}/admin?replicaSet=rs0&authSource=admin"
            return enc, R.choice([f"MONGODB_URI={uri}", f"const client = new MongoClient(\"{uri}\");", f"mongosh \"{uri}\"",
                                  f"spring.data.mongodb.uri={uri}", f"{stamp()} WARN  pymongo.topology: Server selection timeout for {uri}"])
        return mk
    many("MongoDB", "mongodb:// URI", MG, [mongo(False)] * 3, n=3)
    many("MongoDB", "mongodb+srv:// URI", MG, [mongo(True)] * 3, n=3)

    RD = "https://www.iana.org/assignments/uri-schemes/prov/redis"

    def redis(scheme):
        def mk():
            raw, enc = uri_pw()
            userpart = R.choice(["", "default", "app"])
            port = 6380 if scheme == "rediss" else 6379
            uri = f"{scheme}://{userpart}:{enc}@{host('redis')}:{port}/{R.randint(0, 5)}"
            return enc, R.choice([f"REDIS_URL={uri}", f"CELERY_BROKER_URL = \"{uri}\"", f"redis-cli -u {uri} ping",
                                  f"cache:\n  redis_url: \"{uri}\""])
        return mk
    many("Redis", "redis:// URI", RD, [redis("redis")] * 3, n=3)
    many("Redis", "rediss:// TLS URI", "https://www.iana.org/assignments/uri-schemes/prov/rediss", [redis("rediss")] * 2)

    def redis_cli():
        pw = pw_conn().replace("'", "")
        return pw, R.choice([f"redis-cli -h {host('redis')} -p 6379 -a '{pw}' --no-auth-warning info",
                             f"requirepass {pw}\nmaxmemory 2gb", f"masterauth {pw}"])
    many("Redis", "requirepass / -a password", "https://redis.io/docs/latest/operate/oss_and_stack/management/security/", [redis_cli, redis_cli])

    MQ = "https://www.rabbitmq.com/docs/uri-spec"

    def amqp(scheme):
        def mk():
            raw, enc = uri_pw()
            port = 5671 if scheme == "amqps" else 5672
            uri = f"{scheme}://{user()}:{enc}@{host('mq')}:{port}/{R.choice(['%2F', 'orders', 'prod'])}"
            return enc, R.choice([f"AMQP_URL={uri}", f"connection = pika.BlockingConnection(pika.URLParameters(\"{uri}\"))",
                                  f"broker_url = '{uri}'", f"amqp:\n  url: {uri}"])
        return mk
    many("RabbitMQ", "amqp:// URI", MQ, [amqp("amqp")] * 2)
    many("RabbitMQ", "amqps:// URI", MQ, [amqp("amqps")] * 2)

    def jdbc_pg():
        pw = rs(R.randint(12, 20), ALNUM + "-_.~")
        url = f"jdbc:postgresql://{host('pg')}:5432/orders?user={user()}&password={pw}&ssl=true"
        return pw, R.choice([f"spring.datasource.url={url}", f'String url = "{url}";', f"<property name=\"url\" value=\"{url.replace('&', '&amp;')}\"/>"])
    many("JDBC", "PostgreSQL URL ?password=", "https://jdbc.postgresql.org/documentation/use/", [jdbc_pg, jdbc_pg])

    def jdbc_ms():
        pw = pw_conn()
        url = f"jdbc:sqlserver://{R.choice(['sql01.acme.local', 'acme-sql.database.windows.net'])}:1433;databaseName=Billing;user={user()};password={pw};encrypt=true;trustServerCertificate=false"
        return pw, R.choice([f"spring.datasource.url={url}", f"JDBC_URL=\"{url}\"", f"hibernate.connection.url={url}"])
    many("JDBC", "SQL Server URL ;password=", "https://learn.microsoft.com/en-us/sql/connect/jdbc/building-the-connection-url", [jdbc_ms, jdbc_ms])

    def jdbc_my():
        pw = rs(R.randint(12, 20), ALNUM + "-_.~")
        url = f"jdbc:mysql://{host('my')}:3306/shop?user={user()}&password={pw}&useSSL=true"
        return pw, R.choice([f"db.url={url}", f"<url>{url.replace('&', '&amp;')}</url>"])
    many("JDBC", "MySQL URL ?password=", "https://dev.mysql.com/doc/connector-j/en/connector-j-reference-jdbc-url-format.html", [jdbc_my, jdbc_my])

    def jdbc_snow():
        pw = rs(R.randint(14, 22), ALNUM + "-_.~")
        url = f"jdbc:snowflake://{rs(7, UPALNUM)}-{rs(7, UPALNUM)}.snowflakecomputing.com/?user=ETL_USER&password={pw}&warehouse=COMPUTE_WH&db=ANALYTICS"
        return pw, f"snowflake.jdbc.url={url}"
    many("Snowflake", "JDBC URL password=", "https://docs.snowflake.com/en/developer-guide/jdbc/jdbc-configure", [jdbc_snow])

    def snow_sqla():
        raw, enc = uri_pw()
        uri = f"snowflake://ETL_USER:{enc}@{rs(7, LOALNUM)}-{rs(7, LOALNUM)}/ANALYTICS/PUBLIC?warehouse=COMPUTE_WH&role=TRANSFORMER"
        return enc, R.choice([f"SNOWFLAKE_URL={uri}", f"engine = create_engine('{uri}')"])

    def snow_conn():
        pw = pw_conn()
        return pw, R.choice([f"[connections.prod]\naccount = \"acme-xy12345\"\nuser = \"ETL_USER\"\npassword = \"{pw}\"\nwarehouse = \"COMPUTE_WH\"",
                             f"conn = snowflake.connector.connect(user='ETL_USER', password='{pw}', account='acme-xy12345')"])
    many("Snowflake", "SQLAlchemy URL / connector password", "https://docs.snowflake.com/en/developer-guide/python-connector/sqlalchemy",
         [snow_sqla, snow_conn])

    def odbc():
        pw = pw_conn()
        drv = R.choice(["ODBC Driver 18 for SQL Server", "ODBC Driver 17 for SQL Server", "PostgreSQL Unicode", "MySQL ODBC 8.0 Unicode Driver"])
        cs = f"Driver={{{drv}}};Server={R.choice(['tcp:acme-sql.database.windows.net,1433', 'sql01.acme.local'])};Database=Billing;Uid={user()};Pwd={pw};Encrypt=yes;"
        return pw, R.choice([cs, f"conn = pyodbc.connect(\"{cs}\")", f"ODBC_CONNECTION_STRING=\"{cs}\""])
    many("ODBC", "connection string Pwd=", "https://learn.microsoft.com/en-us/sql/connect/odbc/dsn-connection-string-attribute", [odbc, odbc, odbc], n=3)

    def adonet():
        pw = pw_conn()
        srv = R.choice(["tcp:acme-sql.database.windows.net,1433", "SQL01\\PROD", "10.1.2.30,1433", "(localdb)\\MSSQLLocalDB"])
        kw = R.choice([("User Id", "Password"), ("User ID", "Password"), ("uid", "pwd")])
        cs = f"Server={srv};Database=Orders;{kw[0]}={user()};{kw[1]}={pw};Encrypt=True;TrustServerCertificate=False;"
        return pw, R.choice([json.dumps({"ConnectionStrings": {"DefaultConnection": cs}}, indent=2),
                             f'<connectionStrings>\n  <add name="Orders" connectionString="{cs}" providerName="System.Data.SqlClient" />\n</connectionStrings>',
                             f"var conn = new SqlConnection(\"{cs.replace(chr(92), chr(92) * 2)}\");" if "\\" not in cs else f"var conn = new SqlConnection(@\"{cs}\");"])
    many("SQL Server", "ADO.NET connection string Password=", "https://learn.microsoft.com/en-us/dotnet/api/microsoft.data.sqlclient.sqlconnection.connectionstring",
         [adonet, adonet, adonet], n=3)

    def mssql_url():
        raw, enc = uri_pw()
        uri = f"mssql+pyodbc://{user()}:{enc}@acme-sql.database.windows.net:1433/Orders?driver=ODBC+Driver+18+for+SQL+Server"
        return enc, f"SQLALCHEMY_URL=\"{uri}\""

    def sqlcmd():
        pw = pw_conn().replace("!", "")
        return pw, f"sqlcmd -S tcp:sql01.acme.local,1433 -U sa -P '{pw}' -Q \"BACKUP DATABASE Orders TO DISK='/var/opt/mssql/orders.bak'\""
    many("SQL Server", "sqlcmd -P / mssql+pyodbc URL", "https://learn.microsoft.com/en-us/sql/tools/sqlcmd/sqlcmd-utility", [mssql_url, sqlcmd])

    OR = "https://docs.oracle.com/en/database/oracle/oracle-database/19/jjdbc/data-sources-and-URLs.html"

    def ora_thin():
        pw = rs(R.randint(10, 18), ALNUM + "_#$")
        return pw, R.choice([f"jdbc:oracle:thin:{R.choice(['scott', 'hr', 'app_owner'])}/{pw}@//ora-prod.acme.local:1521/ORCLPDB1",
                             f"spring.datasource.url=jdbc:oracle:thin:app_owner/{pw}@ora-prod.acme.local:1521:ORCL"])

    def ora_ez():
        pw = rs(R.randint(10, 18), ALNUM + "_#$")
        return pw, R.choice([f"sqlplus system/{pw}@//ora-prod.acme.local:1521/ORCLPDB1 @install.sql",
                             f"expdp app_owner/{pw}@ORCLPDB1 schemas=APP directory=DATA_PUMP_DIR dumpfile=app.dmp"])

    def ora_sqla():
        raw, enc = uri_pw()
        uri = f"oracle+oracledb://app_owner:{enc}@ora-prod.acme.local:1521/?service_name=ORCLPDB1"
        return enc, f"ORACLE_URL={uri}"
    many("Oracle Database", "user/password@connect-string", OR, [ora_thin, ora_ez, ora_sqla], n=3)

    CH = "https://clickhouse.com/docs/en/interfaces/cli"

    def ch_url():
        raw, enc = uri_pw()
        uri = R.choice([f"clickhouse://default:{enc}@{rs(10, LOALNUM)}.eu-west-1.aws.clickhouse.cloud:9440/default?secure=true",
                        f"https://default:{enc}@{rs(10, LOALNUM)}.us-east-1.aws.clickhouse.cloud:8443"])
        return enc, R.choice([f"CLICKHOUSE_URL={uri}", f"client = clickhouse_connect.get_client(dsn='{uri}')"])

    def ch_cli():
        pw = pw_conn().replace("'", "")
        return pw, f"clickhouse-client --host ch01.acme.internal --secure --user analytics --password '{pw}' --query 'SELECT 1'"
    many("ClickHouse", "URL / client --password", CH, [ch_url, ch_url, ch_cli], n=3)

    KJ = "https://kafka.apache.org/documentation/#security_sasl_jaasconfig"

    def jaas():
        pw = rs(R.randint(16, 64), ALNUM + "+/")
        mod = R.choice([("org.apache.kafka.common.security.plain.PlainLoginModule", "PLAIN"),
                        ("org.apache.kafka.common.security.scram.ScramLoginModule", "SCRAM-SHA-512")])
        u = R.choice([rs(16, UPALNUM), "svc-orders", "ingest"])
        line = f'sasl.jaas.config={mod[0]} required username="{u}" password="{pw}";'
        return pw, R.choice([f"bootstrap.servers=pkc-{rs(5, LOALNUM)}.eu-west-1.aws.confluent.cloud:9092\nsecurity.protocol=SASL_SSL\nsasl.mechanism={mod[1]}\n{line}",
                             line,
                             f"KafkaClient {{\n  {mod[0]} required\n  username=\"{u}\"\n  password=\"{pw}\";\n}};"])
    many("Apache Kafka", "SASL JAAS config password=", KJ, [jaas, jaas, jaas], n=3)

    def simple_uri(vendor, fmt, source, tmpl, n=2, wrappers=None):
        for _ in range(n):
            raw, enc = uri_pw()
            uri = tmpl.format(pw=enc, user=user(), r=rs(6, LOALNUM))
            wr = R.choice(wrappers or ["{u}", "URL={u}", "url: {u}", "\"{u}\""])
            add(vendor, fmt, DB, source, enc, wr.format(u=uri), "database")
    simple_uri("CockroachDB", "postgresql:// URI (port 26257)", "https://www.cockroachlabs.com/docs/stable/connection-parameters",
               "postgresql://{user}:{pw}@free-tier{r}.gcp-us-central1.cockroachlabs.cloud:26257/defaultdb?sslmode=verify-full")
    simple_uri("Neo4j", "neo4j+s:// URI", "https://neo4j.com/docs/operations-manual/current/configuration/connectors/",
               "neo4j+s://neo4j:{pw}@{r}.databases.neo4j.io", wrappers=["NEO4J_URI={u}", "{u}"])
    simple_uri("Elasticsearch", "https://user:password@ URL", "https://www.elastic.co/guide/en/elasticsearch/client/python-api/current/connecting.html",
               "https://elastic:{pw}@es-{r}.acme.internal:9200", wrappers=["ELASTICSEARCH_URL={u}", "es = Elasticsearch(\"{u}\")", "curl -s {u}/_cat/indices"])
    simple_uri("SMTP", "smtp:// URL with password", "smtp://user:password@host:port URL form accepted by django-environ EMAIL_URL and nodemailer; https://datatracker.ietf.org/doc/html/rfc3986#section-3.2.1",
               "smtp://{user}:{pw}@smtp.mailprovider.example:587", wrappers=["EMAIL_URL={u}", "SMTP_URL=\"{u}\""])
    simple_uri("FTP", "ftp:// URL with password", "https://datatracker.ietf.org/doc/html/rfc1738#section-3.2",
               "ftp://{user}:{pw}@files.partner.example/outbound/", wrappers=["wget -r {u}", "{u}"])
    simple_uri("MQTT", "mqtts:// URL with password", "https://github.com/mqtt/mqtt.org/wiki/URI-Scheme",
               "mqtts://{user}:{pw}@mqtt.iot.acme.io:8883", wrappers=["MQTT_BROKER_URL={u}", "client.connect('{u}')"])
    simple_uri("NATS", "nats:// URL with password", "https://docs.nats.io/using-a-client/connecting",
               "nats://{user}:{pw}@nats.acme.internal:4222", wrappers=["NATS_URL={u}", "nc, _ := nats.Connect(\"{u}\")"])
    simple_uri("HTTP proxy", "proxy URL with password", "https://curl.se/docs/manpage.html#-x",
               "http://{user}:{pw}@proxy.corp.acme.io:3128", wrappers=["export HTTPS_PROXY={u}", "Acquire::http::Proxy \"{u}\";", "proxies = {{'https': '{u}'}}"])
    simple_uri("Git", "HTTPS remote with embedded password", "https://git-scm.com/docs/git-credential-store#_storage_format",
               "https://{user}:{pw}@git.acme.internal/platform/infra.git", wrappers=["git clone {u}", "[remote \"origin\"]\n\turl = {u}"])
    simple_uri("Memcached / SASL", "memcached URL", "https://github.com/memcached/memcached/wiki/SASLHowto",
               "memcached://{user}:{pw}@mc.acme.internal:11211", n=2, wrappers=["MEMCACHE_URL={u}"])
    simple_uri("LDAP", "ldaps:// bind URL", "https://datatracker.ietf.org/doc/html/rfc4516",
               "ldaps://cn=svc-bind,ou=svc,dc=acme,dc=io:{pw}@ldap.acme.io:636", n=2, wrappers=["LDAP_URL={u}"])
    for _ in range(2):
        pw = pw_conn()
        t = R.choice([f"spring.ldap.urls=ldaps://ldap.acme.io:636\nspring.ldap.username=cn=svc-bind,ou=svc,dc=acme,dc=io\nspring.ldap.password={pw}",
                      f"ldapsearch -H ldaps://ldap.acme.io -D 'cn=svc-bind,ou=svc,dc=acme,dc=io' -w '{pw}' -b 'dc=acme,dc=io' '(uid=jdoe)'"])
        add("LDAP", "bind password", DB, "https://docs.ldap.com/ldap-sdk/docs/tool-usages/ldapsearch.html", pw, t, "database")

    # HTTP basic credentials in other shapes
    for _ in range(2):
        u, pw = user(), pw_conn()
        b = b64e(f"{u}:{pw}".encode())
        t = R.choice([f"Authorization: Basic {b}", f"curl -H 'Authorization: Basic {b}' https://intranet.acme.io/api/reports",
                      f"{stamp()} DEBUG outgoing request headers: {{'Authorization': 'Basic {b}'}}"])
        add("HTTP", "Basic authorization header", "api_token", "https://datatracker.ietf.org/doc/html/rfc7617", b, t, "database")
    for _ in range(2):
        u, pw = R.choice(["ci-bot", "acmebuild", "deploy"]), pw_conn()
        b = b64e(f"{u}:{pw}".encode())
        t = json.dumps({"auths": {R.choice(["registry.acme.io", "ghcr.io", "https://index.docker.io/v1/"]): {"auth": b}}}, indent=2)
        add("Docker", "config.json auths base64 auth", "api_token", "https://docs.docker.com/reference/cli/docker/login/#credential-stores", b, t, "database")
    for _ in range(2):
        pw = pw_conn()
        t = R.choice([f"machine {R.choice(['ftp.partner.example', 'api.acme.io', 'artifacts.acme.internal'])}\n  login deploy\n  password {pw}",
                      f"deploy:{pw}"])
        if t.startswith("deploy:"):
            t = f"curl -u deploy:{pw} https://artifacts.acme.internal/repository/releases/app-1.4.2.tar.gz -O"
        add("netrc / curl -u", "password", "api_token", "https://everything.curl.dev/usingcurl/netrc", pw, t, "database")
    for _ in range(2):
        val = pw_conn()
        b = b64e(val.encode())
        t = (f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {R.choice(['db-credentials', 'smtp', 'api-keys'])}\n  namespace: prod\n"
             f"type: Opaque\ndata:\n  username: {b64e(user().encode())}\n  password: {b}")
        add("Kubernetes", "Secret manifest data (base64)", "api_token", "https://kubernetes.io/docs/concepts/configuration/secret/; " +
            GL.format("kubernetes-secret-yaml"), b, t, "database")


# ============================================================================================
# 4. Webhook URLs (secret = the whole capability URL)
# ============================================================================================

def build_webhooks():
    def hook(vendor, fmt, source, make, n=2, wrappers=None):
        wrappers = wrappers or ["{u}", "WEBHOOK_URL={u}", "curl -X POST -H 'Content-Type: application/json' -d '{{\"text\":\"deploy finished\"}}' {u}",
                                "notify:\n  webhook_url: \"{u}\"", "{{\"webhook\": \"{u}\", \"events\": [\"push\", \"release\"]}}",
                                "requests.post(\"{u}\", json={{\"content\": \"backup ok\"}})"]
        for w in R.sample(wrappers, n):
            u = make()
            add(vendor, fmt, "webhook", source, u, w.format(u=u), "webhook")
    hook("Slack", "incoming webhook URL", "https://api.slack.com/messaging/webhooks; " + GL.format("slack-webhook-url"),
         lambda: f"https://hooks.slack.com/services/T{rs(R.choice([8, 10]), UPALNUM)}/B{rs(R.choice([8, 10, 11]), UPALNUM)}/{rs(24)}", n=3)
    hook("Slack", "workflow webhook URL", GL.format("slack-webhook-url"),
         lambda: f"https://hooks.slack.com/triggers/T{rs(9, UPALNUM)}/{num(13)}/{hx(32)}")
    hook("Microsoft Teams", "incoming webhook URL (webhook.office.com)", GL.format("microsoft-teams-webhook"),
         lambda: f"https://{R.choice(['acme', 'contoso', 'globexcorp'])}.webhook.office.com/webhookb2/{ruuid()}@{ruuid()}/IncomingWebhook/{hx(32)}/{ruuid()}"
         + R.choice(["", "/V2" + rs(43, ALNUM + "-_")]), n=3)
    hook("Microsoft Teams", "Workflows (Power Automate) webhook URL", "https://learn.microsoft.com/en-us/power-automate/teams/teams-app-create",
         lambda: f"https://prod-{R.randint(10, 99)}.{R.choice(['westeurope', 'eastus', 'westus'])}.logic.azure.com:443/workflows/{hx(32)}/triggers/manual/paths/invoke"
         f"?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={rs(43, ALNUM + '-_')}")
    hook("Discord", "webhook URL", "https://discord.com/developers/docs/resources/webhook#execute-webhook",
         lambda: f"https://{R.choice(['discord.com', 'discordapp.com'])}/api/webhooks/{R.randint(10 ** 17 + 10 ** 16, 13 * 10 ** 17)}/{rs(68, ALNUM + '-_')}", n=3)
    hook("Google Chat", "incoming webhook URL", "https://developers.google.com/workspace/chat/quickstart/webhooks",
         lambda: f"https://chat.googleapis.com/v1/spaces/AAAA{rs(7, ALNUM + '-_')}/messages?key=AIzaSy{rs(33, ALNUM + '-_')}"
         f"&token={rs(43, ALNUM + '-_')}%3D")
    hook("Mattermost", "incoming webhook URL", "https://developers.mattermost.com/integrate/webhooks/incoming/; " + GL.format("mattermost-access-token"),
         lambda: f"https://chat.{R.choice(['acme.io', 'globex.dev'])}/hooks/{rs(26, LOALNUM)}")
    hook("Zapier", "catch hook URL", TH.format("zapierwebhook"),
         lambda: f"https://hooks.zapier.com/hooks/catch/{num(R.choice([6, 7, 8]))}/{rs(R.choice([6, 7]), LOALNUM)}/")
    hook("Make (Integromat)", "custom webhook URL", "https://www.make.com/en/help/tools/webhooks",
         lambda: f"https://hook.{R.choice(['eu1', 'eu2', 'us1'])}.make.com/{rs(32, LOALNUM)}")
    hook("IFTTT", "Webhooks maker key URL", "https://ifttt.com/maker_webhooks",
         lambda: f"https://maker.ifttt.com/trigger/{R.choice(['door_open', 'backup_failed'])}/with/key/{rs(22, ALNUM + '-_')}")
    hook("Rocket.Chat", "incoming webhook URL", "https://docs.rocket.chat/docs/integrations",
         lambda: f"https://chat.acme.io/hooks/{rs(24, ALNUM)}/{rs(48, ALNUM)}")
    hook("Feishu / Lark", "custom bot webhook URL", "https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot",
         lambda: f"https://open.{R.choice(['feishu.cn', 'larksuite.com'])}/open-apis/bot/v2/hook/{ruuid()}")
    hook("DingTalk", "robot webhook access_token URL", "https://open.dingtalk.com/document/robots/custom-robot-access",
         lambda: f"https://oapi.dingtalk.com/robot/send?access_token={hx(64)}")
    hook("WeCom (WeChat Work)", "group robot webhook URL", "https://developer.work.weixin.qq.com/document/path/91770",
         lambda: f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={ruuid()}")
    hook("Datadog", "event webhook with API key in URL", "https://docs.datadoghq.com/api/latest/events/",
         lambda: f"https://api.datadoghq.com/api/v1/events?api_key={hx(32)}")


# ============================================================================================
# 5. Password hashes (secret = the whole hash string unless noted)
# ============================================================================================

def build_hashes():
    HC = "https://hashcat.net/wiki/doku.php?id=example_hashes"
    CR = "https://man7.org/linux/man-pages/man5/crypt.5.html"
    PHC = "https://github.com/P-H-C/phc-string-format/blob/master/phc-sf-spec.md"

    def shadow(h):
        u = R.choice(["root", "deploy", "jdoe", "postgres", "ubuntu", "backup"])
        return R.choice([f"{u}:{h}:19{R.randint(100, 999)}:0:99999:7:::",
                         f"{u}:{h}",
                         f"  - name: {u}\n    passwd: \"{h}\"\n    lock_passwd: false",
                         f"usermod -p '{h}' {u}",
                         f"users.users.{u}.hashedPassword = \"{h}\";"])

    def hashes(name, source, make, wrap, n=2):
        for _ in range(n):
            h = make()
            add(name, "password hash", "password_hash", source, h, wrap(h), "hash")

    hashes("bcrypt $2a$", "https://en.wikipedia.org/wiki/Bcrypt#Description; " + HC,
           lambda: f"$2a${R.choice([10, 12])}$" + bcrypt_b64(rb(16)) + bcrypt_b64(rb(23)),
           lambda h: R.choice([f"INSERT INTO users (email, password_hash) VALUES ('ana@acme.io', '{h}');",
                               json.dumps({"id": R.randint(1, 9999), "email": "ana@acme.io", "password": h})]))
    hashes("bcrypt $2b$", "https://en.wikipedia.org/wiki/Bcrypt#Description",
           lambda: f"$2b${R.choice([10, 12, 13])}$" + bcrypt_b64(rb(16)) + bcrypt_b64(rb(23)),
           lambda h: R.choice([f"admin_password_hash: \"{h}\"", f"ADMIN_PASSWORD_HASH='{h}'", h]))
    hashes("bcrypt $2y$", "https://www.php.net/manual/en/function.password-hash.php",
           lambda: f"$2y${R.choice([10, 11])}$" + bcrypt_b64(rb(16)) + bcrypt_b64(rb(23)),
           lambda h: R.choice([f"admin:{h}", f"'password' => '{h}',"]))
    hashes("sha512crypt $6$", CR, lambda: "$6$" + rs(16, CRYPT64) + "$" + b64_crypt(rb(64)), shadow, n=3)
    hashes("sha512crypt $6$rounds=", CR, lambda: "$6$rounds=656000$" + rs(16, CRYPT64) + "$" + b64_crypt(rb(64)), shadow)
    hashes("sha256crypt $5$", CR, lambda: "$5$" + rs(16, CRYPT64) + "$" + b64_crypt(rb(32)), shadow)
    hashes("md5crypt $1$", CR, lambda: "$1$" + rs(8, CRYPT64) + "$" + b64_crypt(rb(16)), shadow)
    hashes("yescrypt $y$", CR, lambda: "$y$j9T$" + rs(22, CRYPT64) + "$" + b64_crypt(rb(32)), shadow)
    hashes("Apache htpasswd $apr1$", "https://httpd.apache.org/docs/2.4/misc/password_encryptions.html",
           lambda: "$apr1$" + rs(8, CRYPT64) + "$" + b64_crypt(rb(16)),
           lambda h: R.choice([f"admin:{h}", f"# /etc/nginx/.htpasswd\nmetrics:{h}\nops:{'$apr1$' + rs(8, CRYPT64) + '$' + b64_crypt(rb(16))}"]))
    hashes("argon2id", PHC + "; https://github.com/P-H-C/phc-winner-argon2",
           lambda: f"$argon2id$v=19$m={R.choice([65536, 19456, 47104])},t={R.choice([2, 3])},p={R.choice([1, 4])}$" + b64e(rb(16)).rstrip("=") + "$" + b64e(rb(32)).rstrip("="),
           lambda h: R.choice([f"UPDATE accounts SET password = '{h}' WHERE id = 42;", f"password_hash = \"{h}\"",
                               json.dumps({"username": "maria", "hash": h})]), n=3)
    hashes("argon2i", PHC, lambda: "$argon2i$v=19$m=4096,t=3,p=1$" + b64e(rb(16)).rstrip("=") + "$" + b64e(rb(32)).rstrip("="),
           lambda h: f"{R.choice(['api', 'ops'])}_user_hash: {h}")

    def django_pbkdf2():
        pw, salt, it = password(), rs(22, ALNUM), R.choice([600000, 720000, 870000])
        return f"pbkdf2_sha256${it}${salt}$" + b64e(hashlib.pbkdf2_hmac("sha256", pw.encode(), salt.encode(), it))
    hashes("Django PBKDF2 pbkdf2_sha256$", "https://docs.djangoproject.com/en/5.0/topics/auth/passwords/#how-django-stores-passwords",
           django_pbkdf2, lambda h: R.choice([
               json.dumps([{"model": "auth.user", "pk": 1, "fields": {"password": h, "username": "admin", "is_superuser": True}}], indent=2),
               f"INSERT INTO auth_user (username, password, is_superuser) VALUES ('admin', '{h}', true);"]), n=3)

    def werkzeug():
        pw, salt, it = password(), rs(16, ALNUM), 600000
        return f"pbkdf2:sha256:{it}${salt}$" + hashlib.pbkdf2_hmac("sha256", pw.encode(), salt.encode(), it).hex()
    hashes("Werkzeug pbkdf2:sha256", "https://werkzeug.palletsprojects.com/en/stable/utils/#werkzeug.security.generate_password_hash",
           werkzeug, lambda h: R.choice([f"ADMIN_PASSWORD_HASH=\"{h}\"", f"users = {{'admin': '{h}'}}"]))

    def scrypt_django():
        pw, salt = password(), rs(22, ALNUM)
        d = hashlib.scrypt(pw.encode(), salt=salt.encode(), n=16384, r=8, p=1, dklen=64)
        return f"scrypt$16384${salt}$8$1$" + b64e(d)

    def scrypt_phc():
        pw, salt = password(), rb(16)
        d = hashlib.scrypt(pw.encode(), salt=salt, n=2 ** 14, r=8, p=1, dklen=32)
        return "$scrypt$ln=14,r=8,p=1$" + b64e(salt).rstrip("=") + "$" + b64e(d).rstrip("=")
    hashes("scrypt (Django scrypt$)", "https://docs.djangoproject.com/en/5.0/topics/auth/passwords/#using-scrypt-with-django",
           scrypt_django, lambda h: f"password: \"{h}\"")
    hashes("scrypt (PHC $scrypt$)", "https://passlib.readthedocs.io/en/stable/lib/passlib.hash.scrypt.html",
           scrypt_phc, lambda h: R.choice([h, f"hash={h}"]))

    def ntlm_line(user_):
        pw = password()
        nt = md4(pw.encode("utf-16le")).hex()
        return nt, f"{user_}:{R.choice([500, 1001, 1104, 1337])}:aad3b435b51404eeaad3b435b51404ee:{nt}:::"
    for u in ["Administrator", "svc_backup", "jsmith"]:
        nt, line = ntlm_line(u)
        other = ntlm_line("krbtgt")[1]
        add("NTLM (NT hash)", "pwdump / secretsdump format", "password_hash", HC + " (mode 1000); https://en.wikipedia.org/wiki/NTLM",
            nt, R.choice([line, line + "\n" + other, f"[*] Dumping local SAM hashes (uid:rid:lmhash:nthash)\n{line}"]), "hash")

    def asrep():
        u = R.choice(["svc_legacy", "jdoe", "backup.admin"])
        return f"$krb5asrep$23${u}@{R.choice(['CORP.ACME.LOCAL', 'GLOBEX.INT'])}:{hx(32)}${hx(R.choice([464, 480, 512]))}"
    hashes("Kerberos AS-REP $krb5asrep$23$", HC + " (mode 18200)", asrep,
           lambda h: R.choice([h, f"[+] Got TGT-REP for user without preauth:\n{h}"]))

    def tgs():
        svc = R.choice(["MSSQLSvc/sql01.corp.acme.local:1433", "HTTP/intranet.corp.acme.local", "CIFS/fs02.corp.acme.local"])
        u = R.choice(["svc_sql", "svc_web", "svc_files"])
        return f"$krb5tgs$23$*{u}$CORP.ACME.LOCAL${svc}*${hx(32)}${hx(R.choice([1996, 2120, 2256]))}"
    hashes("Kerberos TGS-REP $krb5tgs$23$", HC + " (mode 13100)", tgs,
           lambda h: R.choice([h, f"ServicePrincipalName: {h.split('$')[5].split('*')[0]}\n{h}"]))

    def netntlmv2():
        u, dom = R.choice(["jdoe", "admin", "m.keller"]), R.choice(["ACME", "CORP", "GLOBEX"])
        blob = "0101000000000000" + hx(16) + hx(16) + "00000000" + "02000800" + hx(16) + "0100" + hx(40) + "0000000000000000"
        return f"{u}::{dom}:{hx(16)}:{hx(32)}:{blob}"
    hashes("NetNTLMv2", HC + " (mode 5600)", netntlmv2,
           lambda h: R.choice([h, f"[SMB] NTLMv2-SSP Client   : 10.0.4.{R.randint(2, 250)}\n[SMB] NTLMv2-SSP Username : {h.split('::')[1].split(':')[0]}\\{h.split('::')[0]}\n[SMB] NTLMv2-SSP Hash     : {h}"]))

    def ssha():
        pw, salt = password(), rb(8)
        return "{SSHA}" + b64e(hashlib.sha1(pw.encode() + salt).digest() + salt)
    hashes("LDAP {SSHA}", "https://www.openldap.org/faq/data/cache/347.html", ssha,
           lambda h: R.choice([f"dn: uid=jdoe,ou=people,dc=acme,dc=io\nobjectClass: inetOrgPerson\nuserPassword: {h}", f"rootpw {h}"]))

    def mysql_native():
        pw = password()
        return "*" + hashlib.sha1(hashlib.sha1(pw.encode()).digest()).hexdigest().upper()
    hashes("MySQL native_password", "https://dev.mysql.com/doc/refman/8.0/en/native-pluggable-authentication.html", mysql_native,
           lambda h: R.choice([f"CREATE USER 'app'@'%' IDENTIFIED WITH mysql_native_password AS '{h}';",
                               f"| app   | %    | {h} |"]))

    def scram():
        pw, salt, it = password(), rb(16), 4096
        salted = hashlib.pbkdf2_hmac("sha256", pw.encode(), salt, it)
        ck = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        sk = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        return f"SCRAM-SHA-256${it}:{b64e(salt)}${b64e(hashlib.sha256(ck).digest())}:{b64e(sk)}"
    hashes("PostgreSQL SCRAM-SHA-256", "https://www.postgresql.org/docs/current/catalog-pg-authid.html", scram,
           lambda h: R.choice([f"ALTER ROLE app PASSWORD '{h}';", f" rolname | rolpassword\n app     | {h}"]))

    def pg_md5():
        pw, u = password(), R.choice(["app", "postgres", "report"])
        return "md5" + hashlib.md5((pw + u).encode()).hexdigest()
    hashes("PostgreSQL md5", "https://www.postgresql.org/docs/current/catalog-pg-authid.html", pg_md5,
           lambda h: R.choice([f"CREATE ROLE report LOGIN PASSWORD '{h}';", f"\"app\" \"{h}\""]))
    hashes("phpass (WordPress) $P$", HC + " (mode 400)", lambda: "$P$B" + rs(8, CRYPT64) + b64_crypt(rb(16)),
           lambda h: R.choice([f"INSERT INTO `wp_users` (`user_login`, `user_pass`) VALUES ('admin', '{h}');", h]))
    hashes("Drupal 7 $S$", HC + " (mode 7900)", lambda: "$S$D" + rs(8, CRYPT64) + b64_crypt(rb(32))[:43],
           lambda h: f"UPDATE users SET pass = '{h}' WHERE uid = 1;")
    hashes("GRUB2 PBKDF2", "https://www.gnu.org/software/grub/manual/grub/html_node/Invoking-grub_002dmkpasswd_002dpbkdf2.html",
           lambda: "grub.pbkdf2.sha512.10000." + hx(128, True) + "." + hx(128, True),
           lambda h: f"set superusers=\"root\"\npassword_pbkdf2 root {h}")
    hashes("Cisco IOS type 8 $8$", HC + " (mode 9200)", lambda: "$8$" + rs(14, CRYPT64) + "$" + b64_crypt(rb(32)),
           lambda h: f"username netadmin privilege 15 secret 8 {h}")


# ============================================================================================
# 6. Private keys (secret = the whole armored block) and JWTs
# ============================================================================================

def build_keys():
    PEMS = "https://datatracker.ietf.org/doc/html/rfc7468; " + GL.format("private-key")

    def wrap(k):
        """returns (secret as it appears in the text, text)."""
        style = R.choice(["bare", "bare_nl", "cat", "yaml", "env", "ticket", "json"])
        if style == "yaml":  # block scalar: the key appears re-indented
            ind = "\n".join("    " + ln for ln in k.split("\n"))
            return ind[4:], "tls:\n  crt: /etc/tls/server.crt\n  key: |\n" + ind
        if style == "json":  # JSON string: newlines appear as \n escapes
            esc = json.dumps(k)[1:-1]
            return esc, json.dumps({"id": "signing-key", "pem": k}, indent=2)
        return k, {"bare": k, "bare_nl": k + "\n", "cat": f"$ cat ~/.ssh/id_deploy\n{k}", "env": f"PRIVATE_KEY=\"{k}\"",
                   "ticket": f"-- key material pasted in ticket OPS-{R.randint(1000, 9999)}:\n{k}\n-- end"}[style]

    def keys(vendor, fmt, source, make, n=2):
        for _ in range(n):
            s, t = wrap(make())
            add(vendor, fmt, "private_key", source, s, t, "key")
    keys("PEM", "RSA private key (PKCS#1)", "https://datatracker.ietf.org/doc/html/rfc8017#appendix-A.1.2; " + PEMS,
         lambda: pem("RSA PRIVATE KEY", rsa_pkcs1_der(R.choice([2048, 2048, 4096]))), n=3)
    keys("PEM", "EC private key (SEC1)", "https://datatracker.ietf.org/doc/html/rfc5915; " + PEMS,
         lambda: pem("EC PRIVATE KEY", ec_sec1_der()))
    keys("PEM", "DSA private key", "https://www.openssl.org/docs/man3.0/man1/openssl-dsa.html; " + PEMS,
         lambda: pem("DSA PRIVATE KEY", dsa_der()))
    keys("PEM", "PKCS#8 private key (RSA)", "https://datatracker.ietf.org/doc/html/rfc5208; " + PEMS,
         lambda: pem("PRIVATE KEY", rsa_pkcs8_der()), n=3)
    keys("PEM", "PKCS#8 private key (Ed25519)", "https://datatracker.ietf.org/doc/html/rfc8410#section-7; " + PEMS,
         lambda: pem("PRIVATE KEY", ed25519_pkcs8_der()))
    keys("PEM", "encrypted PKCS#8 private key (PBES2)", "https://datatracker.ietf.org/doc/html/rfc5958; " + PEMS,
         lambda: pem("ENCRYPTED PRIVATE KEY", enc_pkcs8_der()))
    keys("PEM", "legacy encrypted RSA key (Proc-Type/DEK-Info)", "https://datatracker.ietf.org/doc/html/rfc1421; " + PEMS,
         lambda: pem("RSA PRIVATE KEY", rb(1232), headers=[("Proc-Type", "4,ENCRYPTED"), ("DEK-Info", "AES-128-CBC," + hx(32, True))]))
    keys("Apple", "App Store Connect / APNs .p8 key (PKCS#8 EC)", "https://developer.apple.com/documentation/appstoreconnectapi/creating-api-keys-for-app-store-connect-api",
         lambda: pem("PRIVATE KEY", ec_pkcs8_der()))
    keys("OpenSSH", "private key (ed25519)", "https://github.com/openssh/openssh-portable/blob/master/PROTOCOL.key",
         lambda: openssh_key("ed25519", comment=R.choice(["deploy@ci-runner", "jdoe@laptop", "backup@nas01"])), n=3)
    keys("OpenSSH", "private key (RSA 3072)", "https://github.com/openssh/openssh-portable/blob/master/PROTOCOL.key",
         lambda: openssh_key("rsa", comment="git@build-agent"))
    keys("OpenSSH", "private key (ECDSA P-256)", "https://github.com/openssh/openssh-portable/blob/master/PROTOCOL.key",
         lambda: openssh_key("ecdsa", comment="ops@bastion"))
    keys("OpenSSH", "passphrase-protected private key (aes256-ctr/bcrypt)", "https://github.com/openssh/openssh-portable/blob/master/PROTOCOL.key",
         lambda: openssh_key("ed25519", encrypted=True, comment="admin@workstation"))
    keys("PuTTY", "PPK v3 private key", "https://the.earth.li/~sgtatham/putty/0.78/htmldoc/AppendixC.html",
         lambda: putty_key(3, R.choice(["ed25519", "rsa"])))
    keys("PuTTY", "PPK v2 private key", "https://the.earth.li/~sgtatham/putty/0.78/htmldoc/AppendixC.html",
         lambda: putty_key(2, R.choice(["rsa", "ed25519"])))
    keys("OpenPGP", "private key block", "https://datatracker.ietf.org/doc/html/rfc4880#section-6.2; " + GL.format("private-key"),
         lambda: pgp_private_block(R.choice(["Release Signing <release@acme.io>", "Jane Doe <jane@example.org>", "CI Bot <ci@globex.dev>"])))

    # WireGuard: base64 of a 32-byte X25519 scalar (clamped)
    for _ in range(2):
        k = bytearray(rb(32))
        k[0] &= 248
        k[31] = (k[31] & 127) | 64
        key = b64e(bytes(k))
        t = R.choice([f"[Interface]\nPrivateKey = {key}\nAddress = 10.8.0.{R.randint(2, 250)}/24\nListenPort = 51820\n\n[Peer]\nPublicKey = {b64e(rb(32))}\nAllowedIPs = 0.0.0.0/0\nEndpoint = vpn.acme.io:51820",
                      f"wg set wg0 private-key <(echo {key})"])
        add("WireGuard", "interface private key", "private_key", "https://www.wireguard.com/quickstart/#key-generation", key, t, "key")

    # Coinbase CDP key JSON with an embedded SEC1 EC key (escaped newlines)
    for _ in range(2):
        k = pem("EC PRIVATE KEY", ec_sec1_der()) + "\n"
        t = json.dumps({"name": f"organizations/{ruuid()}/apiKeys/{ruuid()}", "privateKey": k}, indent=2)
        add("Coinbase", "CDP API key privateKey (EC)", "private_key", "https://docs.cdp.coinbase.com/get-started/docs/cdp-api-keys", json.dumps(k)[1:-1], t, "key")

    # JWTs -------------------------------------------------------------------------------------
    JW = "https://datatracker.ietf.org/doc/html/rfc7519; " + GL.format("jwt")

    def jwts(vendor, fmt, make, wraps, source=JW, n=2):
        for _ in range(n):
            j = make()
            add(vendor, fmt, "jwt", source, j, R.choice(wraps).format(j=j), "jwt")
    common = ["Authorization: Bearer {j}", "{j}", "token={j}", "{{\"access_token\": \"{j}\", \"token_type\": \"Bearer\", \"expires_in\": 3600}}",
              "curl -H 'Authorization: Bearer {j}' https://api.acme.io/v2/orders",
              "document.cookie = \"session={j}; path=/; secure\";"]
    jwts("JWT", "HS256", lambda: jwt({"alg": "HS256", "typ": "JWT"},
                                     {"sub": str(R.randint(1000, 99999)), "name": R.choice(["Ana Lima", "Kai Berg"]), "role": "admin",
                                      "iat": (t := ts()), "exp": t + 3600}, 32), common, n=3)
    jwts("JWT", "RS256 OIDC ID token", lambda: jwt({"alg": "RS256", "kid": hx(40), "typ": "JWT"},
                                                    {"iss": "https://accounts.google.com", "azp": num(12) + "-" + rs(32, LOALNUM) + ".apps.googleusercontent.com",
                                                     "aud": num(12) + "-" + rs(32, LOALNUM) + ".apps.googleusercontent.com", "sub": num(21),
                                                     "email": "jdoe@acme.io", "email_verified": True, "iat": (t := ts()), "exp": t + 3600}, 256), common)
    jwts("JWT", "ES256", lambda: jwt({"alg": "ES256", "typ": "JWT", "kid": rs(10, UPALNUM)},
                                     {"iss": rs(10, UPALNUM), "iat": ts(), "exp": ts() + 1200, "aud": "appstoreconnect-v1"}, 64),
         ["Authorization: Bearer {j}", "APPSTORE_JWT={j}"])
    jwts("JWT", "EdDSA", lambda: jwt({"alg": "EdDSA", "typ": "JWT"}, {"sub": "svc-ingest", "scope": "write:events", "iat": ts()}, 64), common)
    jwts("Supabase", "service_role JWT", lambda: jwt({"alg": "HS256", "typ": "JWT"},
                                                      {"iss": "supabase", "ref": rs(20, LO), "role": "service_role", "iat": (t := ts()), "exp": t + 10 ** 9 // 3}, 32),
         ["SUPABASE_SERVICE_ROLE_KEY={j}", "const supabase = createClient(url, '{j}')", "apikey: {j}"],
         source="https://supabase.com/docs/guides/api/api-keys; " + GL.format("jwt"))
    jwts("Kubernetes", "service account token (JWT)", lambda: jwt({"alg": "RS256", "kid": b64u(rb(32))},
                                                                   {"aud": ["https://kubernetes.default.svc.cluster.local"], "exp": ts() + 3600, "iat": ts(),
                                                                    "iss": "https://kubernetes.default.svc.cluster.local",
                                                                    "kubernetes.io": {"namespace": "ci", "serviceaccount": {"name": "deployer", "uid": ruuid()}},
                                                                    "sub": "system:serviceaccount:ci:deployer"}, 256),
         ["users:\n- name: deployer\n  user:\n    token: {j}", "kubectl --token={j} get pods -A", "KUBE_TOKEN={j}"],
         source="https://kubernetes.io/docs/reference/access-authn-authz/service-accounts-admin/; " + GL.format("jwt"))
    jwts("Microsoft Entra ID", "access token (JWT)", lambda: jwt({"typ": "JWT", "alg": "RS256", "x5t": b64u(rb(20)), "kid": b64u(rb(20))},
                                                                 {"aud": "https://graph.microsoft.com", "iss": f"https://sts.windows.net/{ruuid()}/",
                                                                  "iat": (t := ts()), "nbf": t, "exp": t + 4500, "appid": ruuid(), "oid": ruuid(),
                                                                  "roles": ["User.Read.All"], "tid": ruuid(), "ver": "1.0"}, 256),
         ["Authorization: Bearer {j}", "{{\"token_type\":\"Bearer\",\"expires_in\":3599,\"ext_expires_in\":3599,\"access_token\":\"{j}\"}}"],
         source="https://learn.microsoft.com/en-us/entra/identity-platform/access-tokens")
    jwts("Auth0", "Management API access token (JWT)", lambda: jwt({"alg": "RS256", "typ": "JWT", "kid": rs(22, ALNUM + "-_")},
                                                                    {"iss": "https://acme.us.auth0.com/", "sub": rs(32) + "@clients",
                                                                     "aud": "https://acme.us.auth0.com/api/v2/", "iat": (t := ts()), "exp": t + 86400,
                                                                     "scope": "read:users update:users", "gty": "client-credentials"}, 256),
         ["AUTH0_MGMT_TOKEN={j}", "Authorization: Bearer {j}"],
         source="https://auth0.com/docs/secure/tokens/access-tokens/management-api-access-tokens")
    jwts("Firebase", "ID token (JWT)", lambda: jwt({"alg": "RS256", "kid": hx(40), "typ": "JWT"},
                                                   {"iss": "https://securetoken.google.com/acme-mobile", "aud": "acme-mobile", "auth_time": ts(),
                                                    "user_id": rs(28), "sub": rs(28), "iat": ts(), "exp": ts() + 3600,
                                                    "firebase": {"identities": {}, "sign_in_provider": "password"}}, 256),
         ["{{\"idToken\": \"{j}\", \"refreshToken\": \"AMf-vB" + rs(120, ALNUM + "-_") + "\"}}", "Authorization: Bearer {j}"],
         source="https://firebase.google.com/docs/auth/admin/verify-id-tokens")


# ============================================================================================
# main
# ============================================================================================

def build():
    build_saas()
    build_saas2()
    build_saas3()
    build_cloud()
    build_db()
    build_webhooks()
    build_hashes()
    build_keys()
    return ENTRIES


def render(entries):
    return "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries)


def summary(entries):
    providers = {e["provider"] for e in entries}
    vendors = {VENDOR_OF[p] for p in providers}
    saas_vendors = {VENDOR_OF[p] for p in providers if CATEGORY_OF[p] in ("saas", "cloud", "webhook")}
    kinds = {}
    for e in entries:
        kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
    cats = {}
    for p in providers:
        cats[CATEGORY_OF[p]] = cats.get(CATEGORY_OF[p], 0) + 1
    return {"lines": len(entries), "providers_formats": len(providers), "vendors": len(vendors),
            "saas_cloud_webhook_vendors": len(saas_vendors), "kinds": dict(sorted(kinds.items())),
            "formats_by_category": dict(sorted(cats.items()))}


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "providers.jsonl")
    entries = build()
    ids = [e["id"] for e in entries]
    assert len(ids) == len(set(ids)), "duplicate ids"
    secrets = [e["secret"] for e in entries]
    assert len(secrets) == len(set(secrets)), "duplicate secrets"
    data = render(entries)
    if "--check" in sys.argv:
        with open(out, encoding="utf-8") as f:
            same = f.read() == data
        print("providers.jsonl is", "up to date" if same else "STALE (rerun without --check)")
        sys.exit(0 if same else 1)
    with open(out, "w", encoding="utf-8") as f:
        f.write(data)
    print(json.dumps(summary(entries), indent=2))
