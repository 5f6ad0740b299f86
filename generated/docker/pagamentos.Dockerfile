# Generated from loja.toml by `cargo xtask gen`; do not edit.
# The binary is built on the host, statically linked, so the image needs no
# base and nothing is pulled: `cargo xtask images` builds it and this image.
# By hand: RUSTFLAGS="-C target-feature=+crt-static" cargo build --release
#   --target x86_64-unknown-linux-gnu -p pagamentos
# then, from the repository root: docker build -f generated/docker/pagamentos.Dockerfile .
FROM scratch
COPY target/x86_64-unknown-linux-gnu/release/pagamentos /pagamentos
USER 65532:65532
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --retries=24 CMD ["/pagamentos", "healthcheck"]
ENTRYPOINT ["/pagamentos"]
