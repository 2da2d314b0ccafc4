// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title MockFeeOnTransferToken
/// @notice Test token that burns a fee on every transfer between two accounts, so that the
/// recipient gets less than the amount sent (as some real tokens do).
/// @dev Test only. Anyone may mint.
contract MockFeeOnTransferToken is ERC20 {
    /// @notice The fee, in basis points of each amount transferred.
    uint256 public immutable FEE_BPS;

    /// @param feeBps The fee, in basis points (at most 10,000).
    constructor(uint256 feeBps) ERC20("Mock Fee Token", "mFEE") {
        FEE_BPS = feeBps;
    }

    /// @notice Mints tokens to anyone.
    /// @param to Who receives them.
    /// @param amount Token units.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @dev Burns `FEE_BPS` of every transfer between two accounts (mint and burn are exempt).
    function _update(address from, address to, uint256 value) internal override {
        if (from == address(0) || to == address(0)) {
            super._update(from, to, value);
            return;
        }
        uint256 fee = value * FEE_BPS / 10_000;
        super._update(from, address(0), fee);
        super._update(from, to, value - fee);
    }
}
