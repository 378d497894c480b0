# pybpfobj in a container: the package, the system libbpf (libbpf1) and our
# BPF objects compiled from bpf_progs/ in a builder stage.
#
#   docker build -t pybpfobj .                               # debian:bookworm-slim
#   docker build --build-arg BASE=my-registry/debian:12 -t pybpfobj .
#
# Loading needs a privileged container that shares the host's bpffs and
# /sys/kernel (BTF, tracing):
#
#   docker run --rm --privileged -v /sys/fs/bpf:/sys/fs/bpf -v /sys/kernel:/sys/kernel \
#       pybpfobj loadall /opt/pybpfobj/bpf_progs/xdp_counter.o /sys/fs/bpf/xdp_counter
#
# BASE must be Debian 12 (bookworm) or compatible: the image takes clang-19,
# libbpf1 and Python's libraries from its apt sources.
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS bpf-build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang-19 make libbpf-dev libc6-dev linux-libc-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY bpf_progs/ bpf_progs/
# always from the sources: a prebuilt build/ in the context is not trusted
RUN rm -rf bpf_progs/build && make -s -C bpf_progs CLANG=clang-19

FROM ${BASE}
ARG DEBIAN_FRONTEND=noninteractive
LABEL org.opencontainers.image.title="pybpfobj" \
      org.opencontainers.image.description="Read, load, pin and work with compiled BPF objects (bpftool-compatible CLI)"
# Python's dependencies come from Debian too, so the image builds from the
# distribution's mirror alone (no PyPI needed); the venv sees them through
# --system-site-packages.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libbpf1 python3 python3-venv python3-pip \
        python3-setuptools python3-pyelftools python3-jinja2 python3-typing-extensions \
 && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md /tmp/pybpfobj-src/
COPY pybpfobj/ /tmp/pybpfobj-src/pybpfobj/
RUN python3 -m venv --system-site-packages /opt/pybpfobj/venv \
 && /opt/pybpfobj/venv/bin/pip install --no-cache-dir --no-deps --no-build-isolation --no-index \
        /tmp/pybpfobj-src \
 && rm -rf /tmp/pybpfobj-src
COPY --from=bpf-build /src/bpf_progs/build/ /opt/pybpfobj/bpf_progs/
ENV PATH=/opt/pybpfobj/venv/bin:$PATH
# the image proves itself while it is built: the CLI starts, finds libbpf,
# and reads a bundled object
RUN pybpfobj --version && pybpfobj inspect /opt/pybpfobj/bpf_progs/xdp_counter.o
WORKDIR /opt/pybpfobj
ENTRYPOINT ["pybpfobj"]
CMD ["help"]
