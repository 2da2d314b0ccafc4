// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;
contract Fill {
    mapping(uint256 => uint256) m;
    uint256 n;
    function fill(uint256 k) external { uint256 s = n; for (uint256 i = 0; i < k; i++) { m[s + i] = s + i + 1; } n = s + k; }
    event Poked(uint256 indexed a, bytes32 b, bytes32 c);
    function poke2() external { n = n + 1; m[n] = n; }
    function poke() external { n = n + 1; m[n] = n; emit Poked(n, blockhash(block.number - 1), bytes32(n)); }
}
