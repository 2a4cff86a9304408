// SPDX-License-Identifier: Apache-2.0
#include "security/curve_keys.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

namespace metaprobe {

namespace {

constexpr size_t z85_key_len = 40;

bool is_secret(const std::string& name) {
  return name.size() > 4 && name.compare(name.size() - 4, 4, ".key") == 0;
}

std::string write_key_file(const std::string& path, const std::string& z85, bool secret,
                           bool force) {
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (force ? O_TRUNC : O_EXCL);
  int fd = ::open(path.c_str(), flags, secret ? 0600 : 0644);
  if (fd < 0)
    return "cannot write " + path + ": " + std::strerror(errno);
  // an existing file overwritten with --force keeps its mode: set it
  ::fchmod(fd, secret ? 0600 : 0644);
  const std::string text = z85 + "\n";
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  int err = errno;
  ok = ::close(fd) == 0 && ok;
  if (!ok)
    return "cannot write " + path + ": " + std::strerror(err);
  return {};
}

// "" when absent; sets `error` when present but unusable.
std::string read_key_file(const std::string& path, bool secret, std::string& error) {
  // symlinks are followed: a Kubernetes Secret volume is made of them
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOENT)
      error = "cannot read " + path + ": " + std::strerror(errno);
    return {};
  }
  struct stat st {};
  // 0600, or 0640/0440 for a group shared by the processes of one
  // appliance (compose, a Kubernetes fsGroup); never world-readable
  if (::fstat(fd, &st) == 0 && secret && (st.st_mode & 027) != 0) {
    ::close(fd);
    error = path + " is readable by other users or writable by its group: chmod 0600 it";
    return {};
  }
  char buf[128];
  ssize_t n = ::read(fd, buf, sizeof(buf));
  ::close(fd);
  std::string text(buf, n > 0 ? static_cast<size_t>(n) : 0);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
    text.pop_back();
  uint8_t raw[32];
  if (text.size() != z85_key_len || !zmq_z85_decode(raw, text.c_str())) {
    error = path + " is not a CURVE key (one line of 40 Z85 characters; metaprobe-keygen writes them)";
    return {};
  }
  return text;
}

std::string public_of(const std::string& secret_z85) {
  char pub[z85_key_len + 1] = {};
  if (zmq_curve_public(pub, secret_z85.c_str()) != 0)
    return {};
  return pub;
}

} // namespace

std::string write_curve_keys(const std::string& dir, bool force) {
  if (!zmq_has("curve"))
    return "this libzmq has no CURVE support";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return "cannot create " + dir + ": " + ec.message();
  ::chmod(dir.c_str(), 0700);
  if (!force)
    for (const char* f : curve_key_files)
      if (std::filesystem::exists(std::filesystem::symlink_status(dir + "/" + f)))
        return dir + "/" + f + " exists: keys are not overwritten (--force replaces them, and "
                               "every process must then get the new ones)";
  for (const char* role : {"server", "client"}) {
    char pub[z85_key_len + 1] = {};
    char sec[z85_key_len + 1] = {};
    if (zmq_curve_keypair(pub, sec) != 0)
      return std::string("cannot generate a key pair: ") + zmq_strerror(zmq_errno());
    std::string base = dir + "/" + role;
    if (auto e = write_key_file(base + ".key", sec, true, force); !e.empty())
      return e;
    if (auto e = write_key_file(base + ".pub", pub, false, force); !e.empty())
      return e;
  }
  return {};
}

std::string load_curve_keys(const std::string& dir, curve_keys& out) {
  out = curve_keys{};
  out.dir = dir;
  std::string* slots[] = {&out.server_public, &out.server_secret, &out.client_public,
                          &out.client_secret};
  bool any = false;
  for (size_t i = 0; i < 4; ++i) {
    std::string error;
    *slots[i] = read_key_file(dir + "/" + curve_key_files[i], is_secret(curve_key_files[i]), error);
    if (!error.empty())
      return error;
    any = any || !slots[i]->empty();
  }
  if (!any)
    return "no CURVE key in " + dir + " (write them with metaprobe-keygen " + dir + ")";
  if (!out.server_secret.empty() && !out.server_public.empty() &&
      public_of(out.server_secret) != out.server_public)
    return dir + "/server.pub does not belong to server.key";
  if (!out.client_secret.empty() && !out.client_public.empty() &&
      public_of(out.client_secret) != out.client_public)
    return dir + "/client.pub does not belong to client.key";
  return {};
}

curve_keys curve_keys_from_config(const config& cfg) {
  curve_keys keys;
  const std::string dir = cfg.str("curve_keys");
  if (dir.empty())
    return keys;
  if (!zmq_has("curve"))
    throw config_error("key 'curve_keys' (" + cfg.origin("curve_keys") +
                       "): this libzmq has no CURVE support");
  if (auto e = load_curve_keys(dir, keys); !e.empty())
    throw config_error("key 'curve_keys' (" + cfg.origin("curve_keys") + "): " + e);
  return keys;
}

std::string make_curve_server(void* socket, const curve_keys& keys) {
  if (keys.server_secret.empty())
    return keys.dir + "/server.key is missing: a binding process needs it";
  int one = 1;
  if (zmq_setsockopt(socket, ZMQ_CURVE_SERVER, &one, sizeof(one)) != 0 ||
      zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, keys.server_secret.c_str(), z85_key_len) != 0)
    return std::string("cannot make a CURVE server: ") + zmq_strerror(zmq_errno());
  // every handshake goes to the context's ZAP handler (zap_handler.hpp),
  // which the owner starts before binding: without one libzmq 4.3 would
  // admit any client key
  return {};
}

std::string make_curve_client(void* socket, const curve_keys& keys) {
  if (keys.server_public.empty() || keys.client_secret.empty() || keys.client_public.empty())
    return keys.dir + ": a connecting process needs server.pub, client.pub and client.key";
  if (zmq_setsockopt(socket, ZMQ_CURVE_SERVERKEY, keys.server_public.c_str(), z85_key_len) != 0 ||
      zmq_setsockopt(socket, ZMQ_CURVE_PUBLICKEY, keys.client_public.c_str(), z85_key_len) != 0 ||
      zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, keys.client_secret.c_str(), z85_key_len) != 0)
    return std::string("cannot make a CURVE client: ") + zmq_strerror(zmq_errno());
  return {};
}

} // namespace metaprobe
