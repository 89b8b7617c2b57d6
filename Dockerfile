# amiaudit in a small image: a static-enough release binary on distroless.
# Policies and report templates are compiled into the binary.
#
#   docker build -t amiaudit .
#   docker run --rm -e AWS_REGION -e AWS_ACCESS_KEY_ID ... -v "$PWD/out:/out" \
#     amiaudit audit --live --org --role-name AmiAuditRole --out /out/today
#
# No volume needed: write the evidence to S3 and compare with the last run
# (docs/scheduling.md):
#
#   docker run --rm -e AWS_REGION ... amiaudit audit --live --org \
#     --out 's3://BUCKET/audits/{date}/{time}/' --baseline-latest s3://BUCKET/audits/
#
# On ECS/Fargate the task role's credentials come from the container
# credentials endpoint (the standard chain picks them up).

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits do not rebuild the AWS SDK and polars.
COPY Cargo.toml Cargo.lock build.rs ./
COPY policies policies
COPY report-templates report-templates
COPY docs/amiaudit.example.toml docs/amiaudit.example.toml
RUN mkdir -p src benches && echo 'fn main() {}' > src/main.rs && echo '' > src/lib.rs \
    && echo 'fn main() {}' > benches/audit.rs && echo 'fn main() {}' > benches/scan.rs \
    && cargo build --release --locked --bin amiaudit \
    && rm -rf src
COPY src src
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin amiaudit \
    && strip target/release/amiaudit

# glibc, libgcc and CA certificates (the SDK verifies TLS with the system roots).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/amiaudit /usr/local/bin/amiaudit
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/amiaudit"]
CMD ["--help"]
