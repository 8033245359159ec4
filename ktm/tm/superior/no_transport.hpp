// ktm/tm/superior/no_transport.hpp: the transport option of a TM that has
// no superior and no subordinates (the default of with_transport<T>).
//
// It is not a superior_transport: a TM composed with it has no superior
// endpoint and pays nothing for one.
#pragma once

namespace ktm::tm {

struct no_transport {
  static constexpr bool enabled = false;
};

}  // namespace ktm::tm
