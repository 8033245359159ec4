// tests/net/echo_peer.cpp: the far end of the multi-process transport test.
//
//   echo_peer <port> <echo TM guid> <parent TM guid> <parent address>
//
// Listens on 127.0.0.1:<port> (0: any), attaches an echo receiver for the
// echo TM that answers every message to the parent TM, prints
// "ready <port>" on stdout, and runs until stdin closes or it is killed.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "ktm/net/grpc/grpc_transport.hpp"
#include "tests/net/net_fixtures.hpp"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: echo_peer <port> <echo tm> <parent tm> <parent address>\n");
    return 2;
  }
  const auto echo_tm = ktm::guid::from_string(argv[2]);
  const auto parent_tm = ktm::guid::from_string(argv[3]);
  if (!echo_tm || !parent_tm) {
    std::fprintf(stderr, "echo_peer: bad guid\n");
    return 2;
  }
  ktm::net::grpc_transport t(std::string("127.0.0.1:") + argv[1]);
  if (t.status()) {
    std::fprintf(stderr, "echo_peer: cannot listen: %s\n", t.status().message().c_str());
    return 1;
  }
  if (t.add_peer(*parent_tm, argv[4])) return 1;
  ktm::net::test::echo<ktm::net::grpc_transport> answer(t);
  t.attach(*echo_tm, answer);
  std::printf("ready %d\n", t.port());
  std::fflush(stdout);
  char c;
  while (::read(STDIN_FILENO, &c, 1) > 0) {
  }
  t.detach(*echo_tm);
  return 0;
}
