#pragma once
/// \file mpi_communicator.hpp
/// Communicator over MPI_COMM_WORLD (compiled only with SUPCON_WITH_MPI).
///
/// Every collective is started non-blocking (MPI_Iallgather, MPI_Iallreduce,
/// MPI_Ireduce_scatter_block) and polled against a deadline: when the other
/// ranks do not answer within `timeout_s` seconds (a rank died without the
/// launcher noticing, or hangs), this rank prints one line naming itself and
/// the operation and calls MPI_Abort, which ends the whole job, instead of
/// waiting forever. timeout_s <= 0 waits without limit.
///
/// Fault injection for tests: the environment variable
/// SUPCON_DIST_FAULT=exit:R:C (or hang:R:C) makes rank R exit at once with
/// status 3 (or stop answering) when it enters its C-th collective (1-based).

#include "supcon/config.hpp"

#if SUPCON_WITH_MPI

#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>

#include "supcon/dist/communicator.hpp"

namespace supcon::dist {

/// Whether this process was started by an MPI launcher (mpirun / mpiexec /
/// srun): the environment of Open MPI, MPICH, Intel MPI or PMIx says so.
inline bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(v)) return true;
  return false;
}

/// MPI_COMM_WORLD as a Communicator. Initialises MPI when nobody has (and
/// then finalises it on destruction). Not copyable; create one per process.
class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(double timeout_s = 0) : timeout_s_(timeout_s) {
    int init = 0;
    MPI_Initialized(&init);
    if (!init) {
      int provided = 0;
      // OpenMP threads compute; only the main thread calls MPI
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
      owns_ = true;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    parse_fault();
  }
  ~MpiCommunicator() override {
    int fin = 0;
    MPI_Finalized(&fin);
    if (owns_ && !fin) MPI_Finalize();
  }
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  double timeout() const { return timeout_s_; }
  void set_timeout(double seconds) { timeout_s_ = seconds; }

  /// Prints one line to stderr in one write: the ranks share a log, and a line
  /// sent in pieces (std::cerr writes each << at once) can be cut by another's.
  static void say(const std::string& line) { std::cerr << line + "\n" << std::flush; }

  /// Ends every rank of the job with `code` after printing `why` (rank-tagged).
  [[noreturn]] void abort(int code, const std::string& why) const {
    say("supcon: rank " + std::to_string(rank_) + " of " + std::to_string(size_) + ": " + why);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; this keeps the promise
  }

 protected:
  void allgather_raw(const void* send, index_t count, void* recv, Dtype t) override {
    enter("allgather");
    MPI_Request req;
    MPI_Iallgather(send, to_int(count), mpi_type(t), recv, to_int(count), mpi_type(t), MPI_COMM_WORLD, &req);
    wait(req, "allgather");
  }
  void allreduce_sum_raw(void* data, index_t count, Dtype t) override {
    enter("allreduce");
    MPI_Request req;
    MPI_Iallreduce(MPI_IN_PLACE, data, to_int(count), mpi_type(t), MPI_SUM, MPI_COMM_WORLD, &req);
    wait(req, "allreduce");
  }
  void reduce_scatter_sum_raw(const void* send, index_t count, void* recv, Dtype t) override {
    enter("reduce-scatter");
    MPI_Request req;
    MPI_Ireduce_scatter_block(send, recv, to_int(count), mpi_type(t), MPI_SUM, MPI_COMM_WORLD, &req);
    wait(req, "reduce-scatter");
  }

 private:
  int rank_ = 0, size_ = 1;
  bool owns_ = false;
  double timeout_s_ = 0;
  long calls_ = 0;
  // injected fault: this rank exits or hangs on entering collective fault_call_
  char fault_kind_ = 0;
  long fault_call_ = 0;

  static MPI_Datatype mpi_type(Dtype t) {
    return t == Dtype::f32 ? MPI_FLOAT : t == Dtype::f64 ? MPI_DOUBLE : MPI_INT64_T;
  }
  int to_int(index_t count) const {
    require(count >= 0 && count <= 0x7fffffff, "MPI collective of ", count,
            " elements exceeds the 2^31 - 1 of one MPI call");
    return static_cast<int>(count);
  }

  void parse_fault() {
    const char* f = std::getenv("SUPCON_DIST_FAULT");
    if (!f) return;
    char kind[8] = {0};
    int r = -1;
    long c = 0;
    if (std::sscanf(f, "%7[a-z]:%d:%ld", kind, &r, &c) == 3 && r == rank_ && c >= 1) {
      fault_kind_ = std::string(kind) == "exit" ? 'e' : std::string(kind) == "hang" ? 'h' : 0;
      fault_call_ = c;
    }
  }

  void enter(const char* what) {
    ++calls_;
    if (!fault_kind_ || calls_ != fault_call_) return;
    std::ostringstream line;
    line << "supcon: rank " << rank_ << ": injected fault (" << (fault_kind_ == 'e' ? "exit" : "hang")
         << ") at collective " << calls_ << " (" << what << ")";
    say(line.str());
    if (fault_kind_ == 'e') std::_Exit(3);
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  }

  // Polls `req` until it completes or the deadline passes (then aborts the job).
  void wait(MPI_Request& req, const char* what) {
    if (timeout_s_ <= 0) {
      MPI_Wait(&req, MPI_STATUS_IGNORE);
      return;
    }
    const auto t0 = std::chrono::steady_clock::now();
    const auto limit = std::chrono::duration<double>(timeout_s_);
    int done = 0;
    for (long spin = 0;; ++spin) {
      MPI_Test(&req, &done, MPI_STATUS_IGNORE);
      if (done) return;
      if (std::chrono::steady_clock::now() - t0 > limit) {
        std::ostringstream msg;
        msg << what << " (collective " << calls_ << ") got no answer from the other ranks within " << timeout_s_
            << " s (--dist-timeout): a rank died or hangs; ending the job";
        abort(4, msg.str());
      }
      // spin briefly for fast collectives, then yield the core to the others
      if (spin > 1000) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
};

}  // namespace supcon::dist

#endif  // SUPCON_WITH_MPI
