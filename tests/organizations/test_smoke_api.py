def test_member_lists_departments(client_for, member, department):
    response = client_for(member).get("/api/v1/organizations/acme/departments/")
    assert response.status_code == 200, response.json()
    assert [row["code"] for row in response.json()["results"]] == ["HQ"]
