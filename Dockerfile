# gatehouse: multi-stage build of a static binary, run as a non-root user.
#
#   docker build -t gatehouse .
#   docker run -p 80:8080 -v /srv/gatehouse:/etc/gatehouse:ro gatehouse
#
# The image runs `gatehouse serve` on $GATEHOUSE_CONFIG,
# /etc/gatehouse/gatehouse.yaml: configs/docker.yaml until a directory with
# your gatehouse.yaml is mounted there. Your config listens on :8080 (the
# exposed port) and keeps admin.listen on loopback, which the health check
# reads from the same file.
#
# Binding ports below 1024 needs CAP_NET_BIND_SERVICE (or map a high port as
# above). Kernel ban sync needs CAP_NET_ADMIN and --network host, and Docker
# gives a non-root user no capability, so start it as root and let gatehouse
# switch once bound:
#   docker run --network host --cap-add NET_ADMIN --user root ... gatehouse \
#     serve --user nonroot
# See docs/deployment.md.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/gatehouse ./cmd/gatehouse

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gatehouse /usr/local/bin/gatehouse
COPY configs/docker.yaml /etc/gatehouse/gatehouse.yaml
ENV GATEHOUSE_CONFIG=/etc/gatehouse/gatehouse.yaml
USER nonroot:nonroot
EXPOSE 8080
# Exec form: the distroless image has no shell. gatehouse healthcheck asks
# the admin listener's /readyz (admin.listen of $GATEHOUSE_CONFIG) and
# exits 0 or 1 within 5s.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/gatehouse", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/gatehouse"]
CMD ["serve"]
