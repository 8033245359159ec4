// ktm/net/grpc/wire_proto.hpp (private to //ktm/net/grpc): superior_message
// to and from its generated protobuf type. from_wire validates every field
// as decode_wire does (wire_codec.hpp).
#pragma once

#include <optional>

#include "ktm/tm/superior/message.hpp"
#include "ktm_superior.pb.h"

namespace ktm::net::detail {

void to_wire(const tm::superior_message& m, wire::superior_message& out);
std::optional<tm::superior_message> from_wire(const wire::superior_message& w);

}  // namespace ktm::net::detail
