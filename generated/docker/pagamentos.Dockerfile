# Generated from loja.toml by `cargo xtask gen`; do not edit.
# The binary is built on the host, statically linked, so the image needs no
# base and nothing is pulled: `cargo xtask images` builds it and this image,
# for amd64 and for arm64. The build context holds one architecture's binary
# under target/<triple>/release/: `cargo xtask images` stages a context per
# image, and the repository's .dockerignore admits the amd64 ones only.
# By hand, for amd64:
#   RUSTFLAGS="-C target-feature=+crt-static" cargo build --release
#   --target x86_64-unknown-linux-gnu -p pagamentos
# then, from the repository root: docker build -f generated/docker/pagamentos.Dockerfile .
FROM scratch
COPY target/*/release/pagamentos /pagamentos
USER 65532:65532
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --retries=24 CMD ["/pagamentos", "healthcheck"]
ENTRYPOINT ["/pagamentos"]
