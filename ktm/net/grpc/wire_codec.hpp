// ktm/net/grpc/wire_codec.hpp: one superior_message to and from the bytes
// grpc_transport puts on the wire (the protobuf message
// ktm.net.wire.superior_message of proto/ktm_superior.proto).
//
// encode_wire(m) gives the serialized message. decode_wire(bytes) trusts
// nothing: it returns nullopt for bytes that do not parse, an unknown kind,
// a GUID field that is not exactly 16 bytes, or an outcome that is not one
// of transaction_outcome's values. Unknown fields (a later version's) are
// ignored. Both need the compiled part of //ktm/net/grpc.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "ktm/tm/superior/message.hpp"

namespace ktm::net {

std::string encode_wire(const tm::superior_message& m);
std::optional<tm::superior_message> decode_wire(std::string_view bytes);

}  // namespace ktm::net
