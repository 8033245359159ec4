// tests/rm/rm_fixtures.hpp: helpers for the resource-manager tests.
//
// rm_env<Io>        a log with one stream "rm" and a change_log over a
//                   map_store, built in place; reopen() drops and reopens
//                   everything (after a crash or a crash image)
// stream_backend<Io> a ktm::tm::log_backend over a ktm::log stream, so a TM
//                   can share a multiplexed log with an RM (test-only; the
//                   durable TM brings the real one)
// decode_chain      the records along an undo-next chain, decoded
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ktm/io/memory_device.hpp"
#include "ktm/log.hpp"
#include "ktm/rm.hpp"
#include "ktm/tm.hpp"

namespace ktm::test {

inline ktm::log::log_options rm_log_options() {
  ktm::log::log_options o;
  o.block_size = 2048;
  o.container_size = 16384;
  o.containers = 2;
  o.write_buffers = 2;
  return o;
}

template <class Io>
struct rm_env {
  using log_type = ktm::log::log<Io>;
  using change_log_type = ktm::rm::change_log<Io, ktm::rm::map_store>;

  Io* io;
  ktm::log::log_options options;
  std::optional<log_type> lg;
  std::optional<ktm::log::stream<Io>> st;
  ktm::rm::map_store store;
  std::unique_ptr<change_log_type> cl;
  ktm::rm::change_log_options cl_options;
  ktm::failure last_error;  // why start() failed

  // Creates the log (create = true) or opens it, then (unless told not to) the change log.
  bool start(bool create, bool with_change_log = true) {
    auto l = create ? log_type::create(*io, "rmlog", options) : log_type::open(*io, "rmlog", options);
    if (!l) {
      last_error = l.error();
      return false;
    }
    lg.emplace(std::move(*l));
    auto s = create ? lg->create_stream("rm") : lg->open_stream("rm");
    if (!s) {
      last_error = s.error();
      return false;
    }
    st.emplace(*s);
    if (!with_change_log) return true;
    auto w = st->marshalling_area();
    if (!w) return false;
    cl = std::make_unique<change_log_type>(*st, std::move(*w), store, cl_options);
    return true;
  }
  void stop() {
    cl.reset();
    st.reset();
    lg.reset();
  }
  explicit rm_env(Io& i, ktm::log::log_options o = rm_log_options(), ktm::rm::change_log_options co = {})
      : io(&i), options(std::move(o)), cl_options(co) {}
};

inline std::vector<ktm::rm::change_record> decode_chain(const auto& stream, ktm::log::lsn from) {
  std::vector<ktm::rm::change_record> v;
  for (const ktm::log::log_record& r : stream.read_undo_next(from)) {
    auto d = ktm::rm::decode_record(r.payload, r.at);
    if (!d) break;
    v.push_back(*d);
  }
  return v;
}

// A log_backend over a stream of a ktm::log log (its own marshalling area).
template <class Io>
class stream_backend {
 public:
  using lsn_type = std::uint64_t;
  static constexpr bool durable = true;

  stream_backend() = default;
  explicit stream_backend(ktm::log::stream<Io> s) : st_(std::make_shared<ktm::log::stream<Io>>(s)) {
    auto w = s.marshalling_area();
    if (w) ma_ = std::make_shared<ktm::log::marshalling_area<Io>>(std::move(*w));
  }

  ktm::result<lsn_type> append(std::span<const std::byte> b, ktm::tm::log_append_mode m) {
    auto r = ma_->append(b, ktm::log::record_type::data,
                         m == ktm::tm::log_append_mode::force ? ktm::log::append_flags::force
                                                              : ktm::log::append_flags::none);
    if (!r) return std::move(r).error();
    return r->raw();
  }
  ktm::result<lsn_type> flush_to(lsn_type l) {
    auto r = ma_->flush_to_lsn(ktm::log::lsn(l));
    if (!r) return std::move(r).error();
    return r->raw();
  }
  ktm::result<lsn_type> write_restart_area(std::span<const std::byte> b) {
    auto r = ma_->write_restart_area(b);
    if (!r) return std::move(r).error();
    return r->raw();
  }
  ktm::result<lsn_type> read_restart_area(std::vector<std::byte>& out) {
    auto r = st_->read_restart_area();
    if (!r) return std::move(r).error();
    out = r->data;
    return r->at.raw();
  }
  ktm::result<lsn_type> read_record(lsn_type at, std::vector<std::byte>& out) {
    int n = 0;
    for (const auto& r : st_->read_forward(ktm::log::lsn(at))) {
      if (n++ == 1) return r.at.raw();
      out = r.payload_copy();
    }
    if (n == 0) return ktm::errc::end_of_stream;
    return ktm::log::lsn::invalid().raw();
  }

  // Every record of the stream, decoded as TM records: (type, UOW).
  std::vector<std::pair<std::uint8_t, ktm::guid>> records() const {
    std::vector<std::pair<std::uint8_t, ktm::guid>> v;
    for (const auto& r : st_->read_forward()) {
      if (r.type != ktm::log::record_type::data || r.payload.size() < 28) continue;
      ktm::guid::bytes_type g;
      for (std::size_t i = 0; i < 16; ++i) g[i] = std::to_integer<std::uint8_t>(r.payload[12 + i]);
      v.emplace_back(std::to_integer<std::uint8_t>(r.payload[0]), ktm::guid(g));
    }
    return v;
  }

 private:
  std::shared_ptr<ktm::log::stream<Io>> st_;
  std::shared_ptr<ktm::log::marshalling_area<Io>> ma_;
};

}  // namespace ktm::test
