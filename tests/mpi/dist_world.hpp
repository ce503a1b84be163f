// The communicator of the MPI tests (MPI_COMM_WORLD, 60 s watchdog).
#pragma once
#include <supcon/dist/mpi_communicator.hpp>

namespace dist_test {
supcon::dist::MpiCommunicator& world();
}  // namespace dist_test
