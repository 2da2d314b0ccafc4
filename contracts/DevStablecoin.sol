// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title DevStablecoin
/// @notice "MedLedger Dev Dollar" (mUSD), the stablecoin of development networks: six decimals
/// like USDC, minted at will by its owner. Worth nothing.
/// @dev Never deploy it on a network where tokens have value: the owner mints without limit.
contract DevStablecoin is ERC20, Ownable {
    // ------------------------------------------------------------------ constructor

    /// @param owner The account allowed to mint.
    constructor(address owner) ERC20("MedLedger Dev Dollar", "mUSD") Ownable(owner) {}

    // ------------------------------------------------------------------ external

    /// @notice Mints new tokens.
    /// @dev Only the owner.
    /// @param to Who receives them.
    /// @param amount Token units (six decimals: 1 mUSD is 1,000,000 units).
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }

    // ------------------------------------------------------------------ public

    /// @notice Returns the number of decimals: six.
    /// @return The decimals.
    function decimals() public pure override returns (uint8) {
        return 6;
    }
}
