# gatehouse: multi-stage build of a static binary, run as a non-root user.
#
#   docker build -t gatehouse .
#   docker run -p 80:8080 -v /etc/gatehouse:/etc/gatehouse:ro gatehouse
#
# Binding ports below 1024 needs CAP_NET_BIND_SERVICE (or map a high port as
# above). Kernel ban sync needs CAP_NET_ADMIN and --network host, and Docker
# gives a non-root user no capability, so start it as root and let gatehouse
# switch once bound:
#   docker run --network host --cap-add NET_ADMIN --user root ... gatehouse \
#     serve -c /etc/gatehouse/gatehouse.yaml --user nonroot
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
USER nonroot:nonroot
EXPOSE 8080 9901
ENTRYPOINT ["/usr/local/bin/gatehouse"]
CMD ["serve", "-c", "/etc/gatehouse/gatehouse.yaml"]
