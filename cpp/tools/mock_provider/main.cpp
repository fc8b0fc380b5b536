#include <cstdio>
int main() {
  std::fputs("mock provider: not built yet\n", stderr);
  return 2;
}
