import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { ApiError } from "../api/client";
import { ErrorBox } from "./ErrorBox";

describe("ErrorBox", () => {
  it("shows the API's message and each field detail", () => {
    render(<ErrorBox error={new ApiError(422, "validation_error", "The request is not valid.", [{ field: "max_hourly_kwh", message: "Input should be greater than 0" }])} />);
    const box = screen.getByRole("alert");
    expect(box).toHaveTextContent("The request is not valid.");
    expect(box).toHaveTextContent("max_hourly_kwh: Input should be greater than 0");
  });

  it("renders nothing without an error", () => {
    const { container } = render(<ErrorBox error={null} />);
    expect(container).toBeEmptyDOMElement();
  });
});
