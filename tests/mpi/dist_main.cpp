// Catch2 main for the tests that run as K MPI ranks: MPI is initialised
// before the tests and finalised after; every rank runs every test (the
// collectives inside need all of them) and the job fails when any rank does.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <supcon/dist/mpi_communicator.hpp>

#include "dist_world.hpp"

supcon::dist::MpiCommunicator& dist_test::world() {
  // a minute without an answer means a test hangs: end the job with a message
  static supcon::dist::MpiCommunicator comm(60.0);
  return comm;
}

int main(int argc, char** argv) {
  dist_test::world();
  const int failed = Catch::Session().run(argc, argv);
  // the job's status is that of the worst rank
  int worst = 0;
  MPI_Allreduce(&failed, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return worst > 0 ? 1 : 0;
}
