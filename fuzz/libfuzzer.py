"""Run one fuzz target under atheris/libFuzzer: ``python fuzz/libfuzzer.py <target> [libFuzzer
flags] [corpus dirs]``. fuzz/run.py drives it; the targets are fuzz_<target>.py.

Only simbank and the target itself are instrumented for coverage (imported inside
``instrument_imports``): instrumenting pydantic, structlog and asyncio as well would cost speed
and steer the fuzzer towards their code instead of ours.
"""

from __future__ import annotations

import importlib
import sys

import atheris
from silence import quiet_logs


def main() -> None:
    target = sys.argv.pop(1)
    module_name = f"fuzz_{target}"
    with atheris.instrument_imports(include=["simbank", module_name]):
        module = importlib.import_module(module_name)
    quiet_logs()
    atheris.Setup(sys.argv, module.check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
