// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title MockERC20
/// @notice Test token: OpenZeppelin's ERC20 with the decimals given at construction (6 like USDC,
/// 18 like DAI, or anything else to be refused), minted by anyone.
/// @dev Test only: compiled by the package tests (tests/package/erc20.py), never shipped.
contract MockERC20 is ERC20 {
    // ------------------------------------------------------------------ constants and immutables

    uint8 private immutable _DECIMALS;

    // ------------------------------------------------------------------ constructor

    /// @param name_ The token's name.
    /// @param symbol_ The token's symbol.
    /// @param decimals_ The token's decimals.
    constructor(string memory name_, string memory symbol_, uint8 decimals_) ERC20(name_, symbol_) {
        _DECIMALS = decimals_;
    }

    // ------------------------------------------------------------------ external

    /// @notice Mints tokens to anyone.
    /// @param to Who receives them.
    /// @param amount Token units.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    // ------------------------------------------------------------------ public

    /// @notice Returns the decimals given at construction.
    /// @return The decimals.
    function decimals() public view override returns (uint8) {
        return _DECIMALS;
    }
}
