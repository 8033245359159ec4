// ktm/net/grpc/wire_codec.cpp: see wire_codec.hpp and wire_proto.hpp.
#include "ktm/net/grpc/wire_codec.hpp"

#include <climits>
#include <cstring>

#include "ktm/net/grpc/wire_proto.hpp"

namespace ktm::net {
namespace {

std::optional<guid> guid_from_wire(const std::string& bytes) {
  guid::bytes_type b;
  if (bytes.size() != b.size()) return std::nullopt;
  std::memcpy(b.data(), bytes.data(), b.size());
  return guid(b);
}

std::string guid_to_wire(const guid& g) {
  return std::string(reinterpret_cast<const char*>(g.bytes().data()), g.bytes().size());
}

constexpr bool is_known_outcome(std::uint32_t v) {
  return v == static_cast<std::uint32_t>(tm::transaction_outcome::undetermined) ||
         v == static_cast<std::uint32_t>(tm::transaction_outcome::committed) ||
         v == static_cast<std::uint32_t>(tm::transaction_outcome::aborted);
}

}  // namespace

namespace detail {

void to_wire(const tm::superior_message& m, wire::superior_message& out) {
  out.set_kind(static_cast<std::uint32_t>(m.kind));
  out.set_from(guid_to_wire(m.from));
  out.set_to(guid_to_wire(m.to));
  out.set_uow(guid_to_wire(m.uow));
  out.set_clock(m.clock);
  out.set_outcome(static_cast<std::uint32_t>(m.outcome));
}

std::optional<tm::superior_message> from_wire(const wire::superior_message& w) {
  if (w.kind() > 0xff || !tm::is_known(static_cast<tm::superior_message_kind>(w.kind()))) return std::nullopt;
  if (!is_known_outcome(w.outcome())) return std::nullopt;
  const auto from = guid_from_wire(w.from()), to = guid_from_wire(w.to()), uow = guid_from_wire(w.uow());
  if (!from || !to || !uow) return std::nullopt;
  tm::superior_message m;
  m.kind = static_cast<tm::superior_message_kind>(w.kind());
  m.from = *from;
  m.to = *to;
  m.uow = *uow;
  m.clock = w.clock();
  m.outcome = static_cast<tm::transaction_outcome>(w.outcome());
  return m;
}

}  // namespace detail

std::string encode_wire(const tm::superior_message& m) {
  wire::superior_message w;
  detail::to_wire(m, w);
  return w.SerializeAsString();
}

std::optional<tm::superior_message> decode_wire(std::string_view bytes) {
  wire::superior_message w;
  if (bytes.size() > static_cast<std::size_t>(INT_MAX)) return std::nullopt;
  if (!w.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return std::nullopt;
  return detail::from_wire(w);
}

}  // namespace ktm::net
