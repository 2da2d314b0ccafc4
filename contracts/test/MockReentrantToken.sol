// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";

/// @title MockReentrantToken
/// @notice Test token that, once armed, calls back into a target contract in the middle of a
/// transfer, as a malicious token (or a token with receiver hooks and a malicious receiver)
/// would.
/// @dev Test only. Anyone may mint and arm it. The call back is made by the token itself, so
/// the target sees the token as `msg.sender`; to re-enter on behalf of a payee, the payee
/// must be this token (credit the token's own address) or a function must not depend on the
/// caller. If the call back reverts, its revert data is bubbled up unchanged, so a test sees
/// the target's own error (for example `ReentrancyGuardReentrantCall()`).
contract MockReentrantToken is ERC20 {
    /// @notice The contract to call back, or zero when disarmed.
    address public target;

    /// @notice The calldata of the call back.
    bytes public callData;

    /// @notice How many times the call back ran (and succeeded).
    uint256 public reentered;

    constructor() ERC20("Mock Reentrant Token", "mRE") {}

    /// @notice Mints tokens to anyone.
    /// @param to Who receives them.
    /// @param amount Token units.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Arms the token: the next transfer calls `target` with `data` first.
    /// @param newTarget The contract to call back (zero disarms).
    /// @param data The calldata of the call back.
    function arm(address newTarget, bytes calldata data) external {
        target = newTarget;
        callData = data;
    }

    /// @notice Lets the token itself call a contract (for example to withdraw a credit made to
    /// the token's own address); a revert is passed on with its data.
    /// @param to The contract.
    /// @param data The calldata.
    /// @return result What the call returned.
    function execute(address to, bytes calldata data) external returns (bytes memory result) {
        return Address.functionCall(to, data);
    }

    /// @dev Calls back once per armed transfer (disarming first so the call back's own
    /// transfer does not recurse), then moves the tokens.
    function _update(address from, address to, uint256 value) internal override {
        address callee = target;
        if (callee != address(0) && from != address(0) && to != address(0)) {
            target = address(0);
            Address.functionCall(callee, callData);
            reentered += 1;
        }
        super._update(from, to, value);
    }
}
