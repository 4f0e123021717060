"""papermill's parameters for retort notebooks.

papermill writes the parameters it is given (`-p temperature 2`) as a cell of the notebook's
language, after the cell tagged `parameters`. It knows Python, R, Julia and a few more, and has
no plugin group for languages; it does import its engines' entry points when it starts. This
package's entry point registers a translator for Rhai, the language of retort's kernel
(`retort kernel install`), so `papermill in.ipynb out.ipynb -k retort -p temperature 2` injects

    // Parameters
    let temperature = 2;

which shadows the parameters cell's `let temperature = 4.0;` for the cells after it.
"""

import math

from papermill.engines import NBClientEngine
from papermill.translators import Translator, papermill_translators


class RhaiTranslator(Translator):
    """Python values as Rhai literals: () for None, #{...} object maps, [...] arrays."""

    @classmethod
    def translate_none(cls, val):
        return "()"

    @classmethod
    def translate_escaped_str(cls, str_val):
        # Rhai's escapes: backslash, quote, \n, \r, \t, and \xHH for the other control
        # characters; everything else (accents, emoji) is written as itself
        named = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
        out = []
        for ch in str(str_val):
            if ch in named:
                out.append(named[ch])
            elif ord(ch) < 0x20 or ord(ch) == 0x7F:
                out.append("\\x%02x" % ord(ch))
            else:
                out.append(ch)
        return '"' + "".join(out) + '"'

    @classmethod
    def translate_int(cls, val):
        if not -(2**63) <= val < 2**63:
            raise ValueError(f"{val} does not fit Rhai's 64-bit integers; pass it as a float or a string")
        return str(val)

    @classmethod
    def translate_float(cls, val):
        if not math.isfinite(val):
            raise ValueError(f"{val} has no Rhai literal; pass a finite number")
        text = repr(val)
        mantissa, _, exponent = text.partition("e")
        if "." not in mantissa:
            mantissa += ".0"
        return mantissa + ("e" + exponent if exponent else "")

    @classmethod
    def translate_dict(cls, val):
        return "#{" + ", ".join(f"{cls.translate_escaped_str(k)}: {cls.translate(v)}" for k, v in val.items()) + "}"

    @classmethod
    def translate_list(cls, val):
        return "[" + ", ".join(cls.translate(v) for v in val) + "]"

    @classmethod
    def comment(cls, cmt_str):
        return f"// {cmt_str}".strip()

    @classmethod
    def assign(cls, name, str_val):
        return f"let {name} = {str_val};"


class RetortEngine(NBClientEngine):
    """papermill's default engine, under the name `retort` (`--engine retort` works too)."""


papermill_translators.register("rhai", RhaiTranslator)
papermill_translators.register("retort", RhaiTranslator)
